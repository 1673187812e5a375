from meterline.cli.main import main

raise SystemExit(main())
