"""`python -m benchmarks.soak`: runs benchmarks.soak.cli."""

from benchmarks.soak.cli import main

raise SystemExit(main())
