"""`python -m benchmarks.loadtest`: runs benchmarks.loadtest.cli."""

from benchmarks.loadtest.cli import main

raise SystemExit(main())
