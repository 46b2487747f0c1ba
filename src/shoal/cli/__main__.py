"""`python -m shoal.cli`: the shoal command."""

from shoal.cli.main import main

main()
