"""``python -m after.cli``: the command line, as the ``after`` script runs it."""

from after.cli.commands import main

main()
