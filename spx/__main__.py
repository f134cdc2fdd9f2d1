"""`python -m spx ...` is the `spx` command."""

from spx.cli import spx_main

if __name__ == "__main__":
    spx_main()
