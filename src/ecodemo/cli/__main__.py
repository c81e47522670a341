"""`python -m ecodemo.cli`: the same as the `ecodemo` command."""

from ecodemo.cli import main

main()
