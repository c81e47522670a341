"""`python -m ecodemo`: the same as the `ecodemo` command."""

from ecodemo.cli import main

main()
