"""``python -m sparktf``: the same as the ``sparktf`` command."""

from sparktf.cli import main

raise SystemExit(main())
