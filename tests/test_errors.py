"""The one error formatter of the command lines and the explorer (dwa_core.errors)."""

import errno

from dwa_core.config import ConfigError
from dwa_core.errors import message, one_line


def test_expected_errors_are_their_message_and_others_keep_their_type():
    assert message(ConfigError("train.lr: must be > 0, got -1.0")) == "train.lr: must be > 0, got -1.0"
    assert message(KeyError("x")) == "KeyError: 'x'"
    denied = PermissionError(errno.EACCES, "Permission denied", "/out/results.json")
    assert message(denied) == "/out/results.json: Permission denied"


def test_one_line_joins_a_message_of_several_lines():
    err = FileNotFoundError("2 of 2 datasets not found:\n  'a' not found\n  'b' not found")
    assert message(err).count("\n") == 2
    assert one_line(err) == "2 of 2 datasets not found: 'a' not found 'b' not found"
