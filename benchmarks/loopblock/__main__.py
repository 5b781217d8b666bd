"""`python -m benchmarks.loopblock`: runs benchmarks.loopblock.cli."""

from benchmarks.loopblock.cli import main

raise SystemExit(main())
