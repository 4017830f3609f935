"""`python -m dwa_core.figures ARGS` is `python -m dwa_core figures ARGS` (cli.py parses them)."""

import sys

from dwa_core.cli import entry

if __name__ == "__main__":
    raise SystemExit(entry(["figures", *sys.argv[1:]]))
