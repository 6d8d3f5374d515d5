import sys

from lifecycle.cli.main import main

sys.exit(main())
