"""`python -m benchmarks.rolling`: runs benchmarks.rolling.cli."""

from benchmarks.rolling.cli import main

raise SystemExit(main())
