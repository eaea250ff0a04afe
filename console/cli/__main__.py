"""`python -m console.cli`: the same as the `creatordeck` command."""

from console.cli.commands import main

if __name__ == "__main__":
    main()
