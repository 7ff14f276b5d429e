from lbcore.cli import main

raise SystemExit(main())
