"""Every error a user can cause, in one place: the CLI prints its message as one line and exits 2.

A new user-facing error subclasses ``UserError`` here; ``user_error`` finds it through any
exceptions that wrapped it (jsonargparse wraps errors raised while instantiating classes), and
``one_line`` is the line the CLI prints for it.
"""

from __future__ import annotations

import errno
import os


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


def user_error(err: BaseException | None) -> BaseException | None:
    """The user-facing error behind ``err``, also when jsonargparse wrapped it while instantiating.

    A path the system refuses (no permission, read-only or full disk, a file where a folder must be)
    is the user's to fix too: one line naming the path and the errno's meaning. Not when another
    error was raised while handling it (that one is a bug to show).
    """
    seen, handled = set(), False
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        if isinstance(err, OSError) and err.filename is not None and err.errno in errno.errorcode and not handled:
            return PathError(path_error_line(err))
        seen.add(id(err))
        handled = handled or err.__cause__ is None
        err = err.__cause__ or err.__context__
    return None


def path_error_line(err: OSError) -> str:
    """``cannot use /sys/x: Operation not permitted (EPERM)``; both paths of a failed rename or link."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    return (f"cannot use {paths}: {os.strerror(err.errno)} ({errno.errorcode[err.errno]}); "
            f"choose a path this user can write (or fix its permissions / free space)")


def one_line(err: BaseException) -> str:
    """The error's own message; one raised in a DataLoader worker arrives wrapped in the worker's traceback.

    torch re-raises it as the same type with the worker's formatted traceback as its text, whose last
    line is ``<module>.<Type>: <message>`` (``traceback.format_exception_only``): the type says what to cut.
    """
    text = str(err)
    if "Original Traceback" in text:  # torch's ExceptionWrapper: "Caught X in DataLoader worker ...\nTraceback..."
        last = [ln for ln in text.splitlines() if ln.strip()][-1].strip()
        kind = type(err)
        for prefix in (f"{kind.__module__}.{kind.__qualname__}: ", f"{kind.__qualname__}: "):
            if last.startswith(prefix):
                return last[len(prefix):]
        return last
    return text


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
    "one_line",
    "path_error_line",
    "user_error",
]
