"""`python -m benchmarks.pacs`: runs benchmarks.pacs.cli."""

from benchmarks.pacs.cli import main

raise SystemExit(main())
