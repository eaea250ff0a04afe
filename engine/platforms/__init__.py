"""Platform adapters (one module per platform) and the mock platform server."""
