import sys

from dwa_core.cli import main

sys.exit(main())
