"""`python -m benchmarks.scaleout`: runs benchmarks.scaleout.cli."""

from benchmarks.scaleout.cli import main

raise SystemExit(main())
