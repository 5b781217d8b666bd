"""`python -m benchmarks.images`: runs benchmarks.images.cli."""

from benchmarks.images.cli import main

raise SystemExit(main())
