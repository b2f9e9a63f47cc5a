"""``python -m optimizer`` is the same as the ``split-opt`` console script."""

from __future__ import annotations

from optimizer.cli import main

raise SystemExit(main())
