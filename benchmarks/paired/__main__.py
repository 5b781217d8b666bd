"""`python -m benchmarks.paired`: runs benchmarks.paired.cli."""

from benchmarks.paired.cli import main

raise SystemExit(main())
