"""`python -m benchmarks.capacity`: runs benchmarks.capacity.cli."""

from benchmarks.capacity.cli import main

raise SystemExit(main())
