"""`python -m simrec_cli` runs the same CLI as the `simrec` command."""

from simrec_cli.cli import main

if __name__ == "__main__":
    main()
