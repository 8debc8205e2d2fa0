"""`python -m makegood ...` is the `makegood` command."""

from makegood.cli.main import main

main()
