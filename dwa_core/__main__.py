import sys

from dwa_core.cli import entry

sys.exit(entry())
