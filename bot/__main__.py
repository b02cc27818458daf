"""`python -m bot` is the same entry point as the `certdesk` console script."""

from bot.cli import main

raise SystemExit(main())
