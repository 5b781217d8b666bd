from benchmarks.overload.cli import main

raise SystemExit(main())
