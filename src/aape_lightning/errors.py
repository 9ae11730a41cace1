"""Every error a user can cause, in one place: the CLI prints its message as one line and exits 2.

A new user-facing error subclasses ``UserError`` here; ``cli._user_error`` finds it through any
exceptions that wrapped it (jsonargparse wraps errors raised while instantiating classes).
"""

from __future__ import annotations


class UserError(ValueError):
    """Input the user can fix; the message names the file or value and the fix."""


class BackboneError(UserError):
    """A backbone name or file that cannot be used."""


class CheckpointMismatchError(UserError):
    """A checkpoint used with other classes or another backbone than it was trained with."""


class CheckpointNotFoundError(CheckpointMismatchError):
    """A ``--ckpt_path`` that names no file (or ``last`` with no checkpoint under the run's root)."""


class CheckpointUnreadableError(CheckpointMismatchError):
    """A checkpoint file that is truncated or not a checkpoint."""


class ConfigError(UserError):
    """A config file or command-line option that names no valid option; the message suggests the closest."""


class UnwritableError(UserError):
    """A place the run must write to (run folder, predictions file) that cannot be written."""


class PathError(UserError):
    """A path the system refuses (an ``OSError`` with a file name): permissions, read-only or full disk."""


class DataError(UserError):
    """Data that cannot be used; the message names the file or folder and the fix."""


class TextTooLongError(UserError):
    """A class name (with its template) or prompt longer than the backbone's text context."""


class PromptBankError(UserError):
    """A prompt bank that does not fit the classes; the message names the file and the fix."""


class SentenceEncoderUnavailable(PromptBankError):
    """sentence-transformers or its model cannot be loaded; the message says what to install."""


class TableError(UserError):
    """A table configuration that cannot run; the message says which entry and what to do."""


class ClassListError(UserError):
    """A class list for prompt generation that cannot be read."""


class QuestionsError(UserError):
    """A questions file for prompt generation that cannot be used."""


__all__ = [
    "BackboneError",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "CheckpointUnreadableError",
    "ConfigError",
    "ClassListError",
    "DataError",
    "PathError",
    "PromptBankError",
    "QuestionsError",
    "SentenceEncoderUnavailable",
    "TableError",
    "TextTooLongError",
    "UnwritableError",
    "UserError",
]
