"""`python -m benchmarks.volumes`: runs benchmarks.volumes.cli."""

from benchmarks.volumes.cli import main

raise SystemExit(main())
