"""`creatordeck`: the command line of every process and the operators' admin commands.

`commands.main` is the entry point ([project.scripts]; `python -m console.cli` too).
Each command imports what it runs when it runs, so `creatordeck --help` starts nothing.

Modules:

- `commands.py`: `creatordeck`: one command line for every process (see the Procfile).
- `connections.py`: `creatordeck connections …`: platform accounts and their encrypted tokens,
  from the shell.
- `experiment_files.py`: Experiment definitions from files (`creatordeck experiments create
  FILE`), validated first.
- `import_creators.py`: `creatordeck creators import FILE.csv`: validate every row, keep the
  good ones, report the bad.
- `preflight.py`: What every `creatordeck` command needs before it starts: the settings,
  checked.
- `rollup.py`: `creatordeck rollup`: run the rollup jobs with a progress display, or check
  idempotency.
"""
