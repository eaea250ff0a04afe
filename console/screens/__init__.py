"""The console's screens (one module each) and the modals they open."""
