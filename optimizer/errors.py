"""The one exception type that means "the user asked for something that cannot work".

The CLI turns a :class:`UserError` into one line on stderr and exit code 2; every other
exception is a bug and keeps its traceback. Messages follow the project rule: name the rule
that was broken, the value that was seen, and the fix.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem with the user's input, files or environment, with a message that says the fix."""
