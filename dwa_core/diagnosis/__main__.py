"""`python -m dwa_core.diagnosis ARGS` is `python -m dwa_core diagnosis ARGS` (cli.py parses them)."""

import sys

from dwa_core.cli import entry

if __name__ == "__main__":
    raise SystemExit(entry(["diagnosis", *sys.argv[1:]]))
