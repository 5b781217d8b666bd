from benchmarks.capacity.cli import main

raise SystemExit(main())
