"""The terminal side: the Textual console and the `creatordeck` command line.

The console app is `app.py` with `screens/`, `widgets/`, `keymap.py`, `themes.py`,
`heap.py` and `creatordeck.tcss`; the other parts live in their own packages:

- `data/`: the read models, what each screen shows (screens never import storage).
- `cli/`: `creatordeck`, the command line of every process (see the Procfile).
- `demo/`: `creatordeck demo` and `creatordeck seed`; only the CLI imports it.
- `ssh/`: `creatordeck console --serve-ssh`, the console for SSH clients.

The top of the import arrows: nothing in engine/ or storage/ imports the console.
"""
