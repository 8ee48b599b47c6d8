"""The one kind of error a user sees: a sentence saying what was wrong and how to say it right.

Handlers and the parser raise `UserError`; the dispatcher turns it into a reply that ends with a
pointer to `!help <command>`. Anything else is a bug on our side and is answered with a reference
number by the shell, never with a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    def __init__(self, message: str, *, help_for: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help_for = help_for
