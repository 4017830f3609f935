"""`python -m dwa_core.cli ARGS` is `python -m dwa_core ARGS`."""

from dwa_core.cli import entry

if __name__ == "__main__":
    raise SystemExit(entry())
