"""The one way an error is shown to a person, never as a traceback: `message` (what the command
lines of cli/ print, the diagnosis command included) and `one_line`, the same joined into one
line (the explorer's status line)."""

from __future__ import annotations

# Errors whose message says what to fix (bad values, unknown names, bad or missing files, unwritable
# output, a diverging run): shown as their message alone. Anything else is a bug or a surprise and
# keeps its type name, so that it can be recognised and reported.
EXPECTED = (ValueError, OSError, RuntimeError)


def message(err: BaseException, interface: str = "cli") -> str:
    """`err` for a person using `interface` ("cli" or "python": how a missing dataset's message
    spells the download switch, data.sources.DatasetNotFoundError, whose message lists one missing
    dataset a line). An OSError names its path and the OS's reason; an error outside EXPECTED is
    prefixed by its type name ("KeyError: 'x'"). What the command lines print after "error: "."""
    if callable(getattr(err, "message", None)):
        text = err.message(interface)
    elif isinstance(err, OSError) and err.strerror:
        named = err.filename is None or str(err.filename) in err.strerror
        text = err.strerror if named else f"{err.filename}: {err.strerror}"
    else:
        text = str(err)
    text = text.strip()
    return text if isinstance(err, EXPECTED) else f"{type(err).__name__}: {text}"


def one_line(err: BaseException, interface: str = "python") -> str:
    """`message(err, interface)` with its lines joined into one (the explorer's status line)."""
    return " ".join(line.strip() for line in message(err, interface).splitlines() if line.strip())
