"""The Textual console and the `creatordeck` command line (the top of the import arrows)."""
