"""Errors that end a run with a one-line message and exit status 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command line or configuration: exit 2, one line, no traceback."""


class ConfigError(UsageError):
    """A problem in a file the user gave us, located as ``file: field: problem``."""

    def __init__(self, file: str, field: str, problem: str):
        self.file, self.field, self.problem = str(file), field, problem
        super().__init__(f"{self.file}: {field}: {problem}" if field else f"{self.file}: {problem}")


class OutOfScope(Exception):
    """A probe was about to touch an address outside the target's declared scope."""
