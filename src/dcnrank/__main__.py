"""`python -m dcnrank` runs the command-line tool."""

from dcnrank.cli.main import main

raise SystemExit(main())
