"""`python -m app.cli …` runs the same entry point as the `groundstation` script."""

from app.cli.entry import main

raise SystemExit(main())
