"""`python -m benchmarks.overload`: runs benchmarks.overload.cli."""

from benchmarks.overload.cli import main

raise SystemExit(main())
