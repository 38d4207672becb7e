"""`python -m clientela`: the command line (how `serve` starts its child processes)."""

from clientela.cli.main import app

app()
