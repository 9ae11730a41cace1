"""The argument parser of ``aape fit / validate / test / predict``: a parse error is one line naming file, key and fix.

A typo in a config names its file and the closest valid key, at any depth; a number out of its bounds
(the init arguments' annotations) names file, key and range; the run's ``config.yaml`` is written in UTF-8.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

from jsonargparse import ArgumentError, Namespace
from lightning.pytorch.cli import LightningArgumentParser

from aape_lightning.lightning_cli.command_line import where_given
from aape_lightning.lightning_cli.plugins import known_classes

# What jsonargparse's bounded number types (the init arguments' annotations) allow, in words.
ALLOWED = {"PositiveInt": "an integer >= 1", "NonNegativeInt": "an integer >= 0", "PositiveFloat": "a number > 0",
           "NonNegativeFloat": "a number >= 0", "ClosedUnitInterval": "a number from 0 to 1",
           "OpenUnitInterval": "a number strictly between 0 and 1"}



class AAPEArgumentParser(LightningArgumentParser):
    """Parse errors as one message (no page of usage): a typo names its file and the closest key.

    jsonargparse builds the parser of each ``class_path`` value (a task, its head, the head's core...)
    as an instance of this class, with ``exit_on_error=False``, and calls its ``error`` before the
    outer parsers': the innermost one knows the class whose option failed
    and that class's options, and its ``validate`` the unknown key, so none is read back from a message.
    """

    argv: list[str] = []  # the command line, to find which config file holds a bad key
    cwd: str = "."  # where it was typed (jsonargparse changes into a config's folder while it reads it)
    built_for: type | None = None  # the class a nested parser holds the options of (None: the top parser)
    innermost: tuple[AAPEArgumentParser, str, Exception | None, Exception] | None = None  # the last to fail first

    def add_class_arguments(self, theclass, nested_key=None, *args, **kwargs):
        """Remember the class a nested parser is for (jsonargparse calls this with no key to build one)."""
        if nested_key is None:
            self.built_for = theclass
        return super().add_class_arguments(theclass, nested_key, *args, **kwargs)

    def save(self, namespace, path, format="parser_mode", skip_unset=True, skip_validation=False, overwrite=False,
             multifile=True, **kwargs) -> None:
        """A local single-file save (the run's ``config.yaml``) in UTF-8 whatever the locale; others as jsonargparse does.

        jsonargparse opens the file in the locale's encoding: under ``LC_ALL=C`` a non-ASCII class name in
        the config was a UnicodeEncodeError. Paths read under such a locale keep their bytes.
        """
        if multifile or "://" in str(path):
            return super().save(namespace, path, format, skip_unset, skip_validation, overwrite, multifile, **kwargs)
        if not overwrite and os.path.isfile(path):
            raise ValueError(f"Refusing to overwrite existing file: {path}")
        text = self.dump(namespace, format=format, skip_unset=skip_unset, skip_validation=skip_validation, **kwargs)
        Path(path).write_text(text, encoding="utf-8", errors="surrogateescape")  # paths keep their bytes

    def validate(self, namespace: Namespace, *args, **kwargs) -> None:
        """jsonargparse's check, naming on the ``KeyError`` the options this (nested) parser does not have."""
        try:
            super().validate(namespace, *args, **kwargs)
        except KeyError as err:
            if self.built_for is not None:
                known = set(self.option_names())
                err.unknown_options = [k for k in vars(namespace) if not k.startswith("__") and k not in known]
            raise

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:  # a nested parser: jsonargparse raises, an outer parser reports
            try:
                return super().error(message, ex)
            except ArgumentError as raised:
                if not any(isinstance(e, ArgumentError) for e in _causes(ex)):  # the first to fail, innermost
                    AAPEArgumentParser.innermost = (self, message, ex, raised)
                raise
        inner = self._innermost(ex)
        line = self._typo(message, inner) or self._bad_number(message, inner)
        if line:
            sys.stderr.write(f"aape: error: {line}\n")
            sys.exit(2)
        # jsonargparse names an unknown class only in its text (an ArgumentError carries no value or key)
        unknown = sorted(set(re.findall(r"Expected a dot import path string: (\S+)", message)))
        hint = ""
        if unknown:
            kinds = "; ".join(f"{kind}: {', '.join(n)}" for kind, n in known_classes().items())
            hint = f"\nunknown class {', '.join(unknown)}. Known {kinds}. A full import path (package.module.Class) works too."
        sys.stderr.write(f"aape: error: {message}{hint}\nSee `aape <subcommand> --help` for the options.\n")
        sys.exit(2)

    @staticmethod
    def _innermost(ex: Exception | None) -> tuple[AAPEArgumentParser, str, Exception | None] | None:
        """The nested parser where this failure began, its message and error, when it is among ``ex``'s causes."""
        found = AAPEArgumentParser.innermost
        AAPEArgumentParser.innermost = None
        if found is None or not any(e is found[3] for e in _causes(ex)):  # an earlier failure, handled by jsonargparse
            return None
        return found[:3]

    def option_names(self) -> list[str]:
        """The options this parser accepts at its top level (a nested parser: its class's init arguments)."""
        return sorted({a.dest.split(".")[0] for a in self._actions if a.dest and a.dest != "help"})

    def _typo(self, message: str, inner: tuple[AAPEArgumentParser, str, Exception | None] | None) -> str | None:
        """One line for an option no class accepts: where it was given and the closest valid name."""
        sub = next((a for a in self.argv if a in ("fit", "validate", "test", "predict")), "fit")
        unknown = getattr(inner[2], "unknown_options", None) if inner else None
        if unknown:  # under a class_path: the nested parser's validate named it
            owner, key, valid = inner[0].built_for, unknown[0], inner[0].option_names()
            what = f"{key!r} is not an option of {owner.__name__}"
        else:
            # a key of the top parser (trainer.*, a group): jsonargparse names it only in its text, as it
            # raises every failure as ``ArgumentError(None, text)`` with no argument name or key
            option = re.search(r"does not accept option '([^']+)'", message)
            if not option:
                return None
            key, valid = self._keys_like(sub, option.group(1))
            what = f"option {key!r} does not exist"
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        where = where_given(key.rsplit(".", 1)[-1], self.argv, self.cwd)
        fix = f"did you mean {close[0]!r}?" if close else f"see `aape {sub} --help` for the options"
        return f"{where}: {what}; {fix}"

    def _bad_number(self, message: str, inner: tuple[AAPEArgumentParser, str, Exception | None] | None) -> str | None:
        """One line for a number out of its bounds: ``data.batch_size=0 ... must be an integer >= 1``.

        The key, the value and the bounded type exist only in jsonargparse's text (its errors carry no
        key or value), read here from the innermost parser's own message; the class is that parser's.
        """
        text = inner[1] if inner else message
        bad = re.search(r"Not of type (\w+): ([^\n]*)", text)
        if not bad or bad.group(1) not in ALLOWED:
            return None
        at = message.find(bad.group(0))  # the key's path: every "Parser key" from the top down to this one
        key = ".".join(re.findall(r'Parser key "([^"]+)"', message[: at if at >= 0 else len(message)]))
        value = re.match(r"(\S+) does not conform", bad.group(2)) or re.search(r"invalid literal .*?: ('[^']*')", bad.group(2))
        value = value or re.search(r"Given value: ([^\n]*)", text[bad.end():])  # inside a Union with None
        owner = inner[0].built_for if inner else None
        optional = "NoneType" in text[: bad.start()].rsplit("Parser key", 1)[-1]
        allowed = ALLOWED[bad.group(1)] + (" or null" if optional else "")
        where = where_given(key.rsplit(".", 1)[-1], self.argv, self.cwd)
        of = f" ({owner.__name__})" if owner else ""
        return f"{where}: {key}={value.group(1) if value else '?'}{of} must be {allowed}"

    def _keys_like(self, sub: str, key: str) -> tuple[str, list[str]]:
        """The wrong part of ``key`` and the valid keys in its place (``trainer.max_epoch`` -> ``trainer.*``)."""
        parser = self
        for action in self._actions:
            parser = getattr(action, "_name_parser_map", {}).get(sub, parser)
        prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
        dests = {a.dest for a in parser._actions if a.dest and a.dest != "help"}
        if prefix and prefix.split(".")[0] in {d.split(".")[0] for d in dests}:
            return key, sorted(d for d in dests if d.startswith(prefix) and "." not in d[len(prefix):])
        return key.split(".")[0], sorted({d.split(".")[0] for d in dests})


def _causes(err: BaseException | None):
    """``err`` and the exceptions it was raised from, innermost last."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__
