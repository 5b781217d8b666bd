from benchmarks.images.cli import main

raise SystemExit(main())
