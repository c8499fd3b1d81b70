"""One error type for everything a user can get wrong; the CLI prints it as one line."""
from __future__ import annotations


class TalkrtError(Exception):
    """A problem with an input, an option or an environment, named for the user.

    `subject` is what is wrong (a path, an option name), `problem` says what is wrong with it.
    """

    def __init__(self, subject: object, problem: str):
        super().__init__(f"{subject}: {problem}")
        self.subject = str(subject)
        self.problem = problem


class InputError(TalkrtError):
    """A portrait or audio file that cannot be used."""


class OptionError(TalkrtError):
    """An option value, or a combination of options, that makes no sense."""
