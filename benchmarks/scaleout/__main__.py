from benchmarks.scaleout.cli import main

raise SystemExit(main())
