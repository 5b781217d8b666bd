from benchmarks.paired.cli import main

raise SystemExit(main())
