"""The one way an error is shown to a person: one line, no traceback. The command lines (`cli.py`,
the diagnosis command included) and the explorer's status line all use `one_line`."""

from __future__ import annotations

# Errors whose message says what to fix (bad values, unknown names, bad or missing files, unwritable
# output, a diverging run): shown as their message alone. Anything else is a bug or a surprise and
# keeps its type name, so that it can be recognised and reported.
EXPECTED = (ValueError, OSError, RuntimeError)


def one_line(err: BaseException, interface: str = "cli") -> str:
    """`err` as one line for a person using `interface` ("cli" or "python": how a missing dataset's
    message spells the download switch, data.sources.DatasetNotFoundError). An OSError names its
    path and the OS's reason; a message of several lines is joined into one; an error outside
    EXPECTED is prefixed by its type name ("KeyError: 'x'")."""
    if callable(getattr(err, "message", None)):
        text = err.message(interface)
    elif isinstance(err, OSError) and err.strerror:
        named = err.filename is None or str(err.filename) in err.strerror
        text = err.strerror if named else f"{err.filename}: {err.strerror}"
    else:
        text = str(err)
    text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if isinstance(err, EXPECTED) else f"{type(err).__name__}: {text}"
