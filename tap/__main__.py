"""``python -m tap`` runs the command-line interface."""

from tap.cli import main

raise SystemExit(main())
