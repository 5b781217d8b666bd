from benchmarks.loadtest.cli import main

raise SystemExit(main())
