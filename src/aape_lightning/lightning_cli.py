"""The LightningCLI behind ``aape fit / validate / test / predict``, with what a user needs on top.

Imported only by those commands (lightning takes seconds to import). On top of LightningCLI:
a typo in a config names its file and the closest valid key, at any depth; a number out of its
bounds (the init arguments' annotations) and a config file that is not YAML of options are one
line naming file, key and range; ``--ckpt_path`` is checked (missing, truncated, ``last`` = the
newest checkpoint under the run's root, another task / data / head kind); the checkpoint's model
settings are used except where the command line gives one, which is applied or refused; test and
predict from a checkpoint alone log beside the checkpoint's run; each run claims its version
folder atomically and keeps a config an earlier run left; a run refused before it starts leaves
no run folder behind.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import re
import shutil
import sys
import time
from importlib import import_module
from pathlib import Path

import yaml
from jsonargparse import ArgumentError, Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from aape_lightning.errors import CheckpointMismatchError, ConfigError, UnwritableError, user_error

log = logging.getLogger(__name__)

# Packages whose classes YAML may name by their short name (each lists them in ``__all__``).
PLUGIN_PACKAGES = ("aape_lightning.tasks", "aape_lightning.heads", "aape_lightning.core", "aape_lightning.data",
                   "aape_lightning.demo", "aape_lightning.callbacks")
EVALUATING = ("validate", "test", "predict")
# The classes a run uses when its config names none (``model``/``data`` given without a class_path).
DEFAULT_CLASSES = {"model": "aape_lightning.tasks.ClassificationTask",
                   "data": "aape_lightning.data.ClassificationDataModule"}
# What jsonargparse's bounded number types (the init arguments' annotations) allow, in words.
ALLOWED = {"PositiveInt": "an integer >= 1", "NonNegativeInt": "an integer >= 0", "PositiveFloat": "a number > 0",
           "NonNegativeFloat": "a number >= 0", "ClosedUnitInterval": "a number from 0 to 1",
           "OpenUnitInterval": "a number strictly between 0 and 1"}


def load_plugins() -> None:
    """Import every class the plugin packages export: jsonargparse resolves short names among loaded subclasses."""
    for package in PLUGIN_PACKAGES:
        module = import_module(package)
        for name in module.__all__:
            getattr(module, name)


def known_classes() -> dict[str, list[str]]:
    """Short names YAML and the command line accept, per kind (from each subpackage's ``__all__``)."""
    core, data, demo, heads, tasks = (import_module(f"aape_lightning.{n}") for n in ("core", "data", "demo", "heads", "tasks"))

    def names(module, base: type) -> list[str]:
        return sorted(n for n in module.__all__ if isinstance(getattr(module, n), type)
                      and issubclass(getattr(module, n), base) and getattr(module, n) is not base)

    return {
        "tasks": names(tasks, tasks.FrozenBackboneTask),
        "heads": names(heads, heads.ClassificationHead),
        "aggregators": names(core, core.Aggregator),
        "readers": names(data, data.DatasetReader) + names(demo, data.DatasetReader),
    }


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
        where = _where_given(key.rsplit(".", 1)[-1], self.argv)
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
        where = _where_given(key.rsplit(".", 1)[-1], self.argv)
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


def _short(class_path: str | None) -> str:
    return (class_path or "?").rsplit(".", 1)[-1]


def _data_kind(class_path: str | None) -> str | None:
    """A data module's family: its ancestor just below ``ImageDataModule`` (NoCapsDataModule -> CaptionDataModule)."""
    from aape_lightning.data.image_datamodule import ImageDataModule

    module, _, name = (class_path or "").rpartition(".")
    try:
        cls = getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    if not isinstance(cls, type) or not issubclass(cls, ImageDataModule) or cls is ImageDataModule:
        return None
    lineage = [c for c in cls.__mro__ if isinstance(c, type) and issubclass(c, ImageDataModule) and c is not ImageDataModule]
    return lineage[-1].__name__


def _init_default(class_path: str | None, name: str) -> str | None:
    """The short class name an ``__init__`` argument of ``class_path`` defaults to (``head`` -> ``AAPEHead``)."""
    module, _, cls = (class_path or "").rpartition(".")
    try:
        default = inspect.signature(getattr(import_module(module), cls).__init__).parameters[name].default
    except (ImportError, AttributeError, ValueError, KeyError):
        return None
    return getattr(default, "__name__", None)


def check_config_files(argv: list[str]) -> None:
    """Refuse a ``--config`` file that is not YAML of options, naming the file, the line and what was expected."""
    for flag, value in zip(argv, argv[1:]):
        if flag not in ("-c", "--config") or not Path(value).is_file():
            continue
        text = Path(value).read_text(encoding="utf-8", errors="replace")
        try:
            config = yaml.safe_load(text)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"{value}, line {mark.line + 1}, column {mark.column + 1}" if mark else value
            lines = text.splitlines()
            tab = mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]
            fix = "a tab: YAML indents with spaces" if tab else f"{err.problem}; expected YAML (`key: value`, spaces to indent)"
            raise ConfigError(f"{where}: {fix}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{value}: not YAML ({str(err).splitlines()[0]})") from None
        if config is not None and not isinstance(config, dict):
            raise ConfigError(
                f"{value}: a config is a mapping of options (trainer:, model:, data: ...), this file holds a "
                f"{type(config).__name__}: {text.strip().splitlines()[0][:60]!r}"
            )


# Keys that moved to one place in every task (issue 26), without ``init_args``: old key -> where it is now.
MOVED = {"model.head.core": "model.core", "model.optimizer": "model.optim.optimizer",
         "model.schedule": "model.optim.schedule", "model.warmup_epochs": "model.optim.warmup_epochs",
         "model.warmup_lr": "model.optim.warmup_lr"}


def check_moved_keys(argv: list[str]) -> None:
    """Refuse a key that moved (``model.head.core`` -> ``model.core``) in one line naming it, on the command line or in a ``--config``.

    Without this jsonargparse's refusal is a dozen lines about Union subtypes that never say where the key went.
    """
    import yaml

    def keys(node, prefix: tuple[str, ...] = ()):
        """Every key of a YAML mapping, outer before inner, as written (dotted) and as its parts without ``init_args``."""
        for key, value in node.items() if isinstance(node, dict) else ():
            parts = (*prefix, *str(key).split("."))
            yield ".".join(parts), tuple(p for p in parts if p != "init_args")
            yield from keys(value, parts)

    def refuse(where: str, given: str, parts: tuple[str, ...]) -> None:
        for old, new in MOVED.items():
            n = len(old.split("."))
            if parts[:n] != tuple(old.split(".")):
                continue
            rest = parts[n:]
            if old == "model.optimizer" and rest[:1] in (("lr",), ("weight_decay",), ("momentum",)):
                new, rest = f"model.optim.{rest[0]}", rest[1:]  # the optimiser's own arguments sit beside it now
            elif old == "model.optimizer" and rest:  # a class_path or an argument model.optim does not offer
                new, rest = "model.optim (optimizer: adamw or sgd, lr, weight_decay, momentum)", ()
            raise ConfigError(f"{where}: {given!r} moved: use {'.'.join((new, *rest))} instead (one key for every task)")

    for token in argv:
        if token.startswith("--model."):
            key = token[2:].split("=", 1)[0]
            refuse("command line", "--" + key, tuple(p for p in key.split(".") if p != "init_args"))
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-c", "--config") and Path(value).is_file():
            try:
                config = yaml.safe_load(Path(value).read_text(encoding="utf-8", errors="replace"))
            except yaml.YAMLError:
                continue  # check_config_files names what is wrong with it
            for written, parts in keys(config):
                refuse(value, written, parts)


def _where_given(key: str, argv: list[str]) -> str:
    """The command line when an option there ends in ``key``, else the last config file with ``key`` at any depth."""
    if any(a.startswith("--") and a[2:].split("=", 1)[0].rsplit(".", 1)[-1] == key for a in argv):
        return "command line"
    files = []
    for flag, value in zip(argv, argv[1:]):
        path = Path(AAPEArgumentParser.cwd, value)
        if flag in ("-c", "--config") and path.is_file():
            if _has_key(yaml.safe_load(path.read_text(encoding="utf-8", errors="replace")), key):  # read: checked YAML
                files.append(value)
    return files[-1] if files else "command line"  # the last file given wins


def _has_key(node, key: str) -> bool:
    """Whether a mapping anywhere in the YAML ``node`` has ``key``."""
    if isinstance(node, dict):
        return key in node or any(_has_key(v, key) for v in node.values())
    return isinstance(node, list) and any(_has_key(v, key) for v in node)


def typed_model_keys(argv: list[str]) -> list[str]:
    """``model...`` options given on the command line, as dotted keys (``--model.head.hidden=8`` -> ``model.head.hidden``)."""
    keys = []
    for token in argv:
        if token.startswith("--model.") or token.startswith("--model=") or token == "--model":
            key = token[2:].split("=", 1)[0]
            if not key.endswith(".help"):
                keys.append(key)
    return list(dict.fromkeys(keys))


def _full_key(config: Namespace, key: str) -> str:
    """``model.head.hidden`` -> ``model.init_args.head.init_args.hidden``, following the config's nesting."""
    parts = key.split(".")
    out, node = [parts[0]], config.get(parts[0])
    for part in parts[1:]:
        if isinstance(node, Namespace) and "init_args" in node and part not in ("class_path", "init_args", "dict_kwargs"):
            out.append("init_args")
            node = node.get("init_args")
        out.append(part)
        node = node.get(part) if isinstance(node, Namespace) else None
    return ".".join(out)


class AAPECLI(LightningCLI):
    """LightningCLI in subclass mode: tasks, heads, readers and data modules by ``class_path``."""

    def add_arguments_to_parser(self, parser) -> None:
        from aape_lightning.callbacks import PredictionWriter, RunRecord

        parser.add_lightning_class_args(PredictionWriter, "predictions")
        parser.add_lightning_class_args(RunRecord, "run_record")
        parser.set_defaults({key: {"class_path": class_path} for key, class_path in DEFAULT_CLASSES.items()})

    def parse_arguments(self, parser, args) -> None:
        """Parse again with the chosen classes as defaults when a config or option switched ``model``/``data``.

        jsonargparse carries the default class's init_args over to a new ``class_path`` where the
        new class accepts them: VQADataModule would get ClassificationDataModule's ``shots: 16`` and
        ``augment: true``. With the chosen class as the default, every value not given is its own.
        """
        if isinstance(args, (dict, Namespace)):
            return super().parse_arguments(parser, args)
        argv = AAPEArgumentParser.argv
        probe = [a for a in argv if not a.startswith("--print_config")]  # print only the final config
        config = parser.parse_args(probe)
        sub = config.get("subcommand")
        chosen = {key: (config[sub] if sub else config).get(f"{key}.class_path") for key in DEFAULT_CLASSES}
        switched = {key: {"class_path": c} for key, c in chosen.items()
                    if c and c.rsplit(".", 1)[-1] != DEFAULT_CLASSES[key].rsplit(".", 1)[-1]}  # fmt: skip
        if not switched and probe == argv:
            self.config = config
            return
        (self._subcommand_parsers[sub] if sub else parser).set_defaults(switched)
        super().parse_arguments(parser, args)

    # -- --ckpt_path ----------------------------------------------------------------------
    def _parse_ckpt_path(self) -> None:
        """Model settings come from the checkpoint, except those typed on the command line (applied or refused)."""
        from aape_lightning.tasks.checkpoint import find_last_checkpoint, read_checkpoint

        sub = self.config.get("subcommand")
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if not ckpt_path:
            return
        if ckpt_path == "last":
            root = self.config[sub].trainer.get("default_root_dir") or os.getcwd()
            ckpt_path = str(find_last_checkpoint(root))
            print(f"--ckpt_path last: {ckpt_path}", file=sys.stderr)
        checkpoint = read_checkpoint(ckpt_path, weights_only=True)
        self.config[sub].ckpt_path = ckpt_path
        before = self.config[sub].clone()
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        self._check_kind(sub, hparams, checkpoint, ckpt_path)
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        if hparams:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)
        self._check_backbone(sub, before, ckpt_path)
        self._apply_typed_model_values(sub, before, ckpt_path)
        if sub in ("test", "validate"):
            self._data_from_checkpoint(sub, checkpoint)
        if sub in EVALUATING and self.config[sub].trainer.get("default_root_dir") is None:
            self.config[sub].trainer.default_root_dir = str(_run_root(Path(ckpt_path)))

    def _apply_typed_model_values(self, sub: str, before: Namespace, ckpt_path: str) -> None:
        """Put back what the command line gave for the model: never silently replaced by the checkpoint's value."""
        config = self.config[sub]
        for key in typed_model_keys(type(self.parser).argv):
            given = before.get(_full_key(before, key))
            full = _full_key(config, key)
            saved = config.get(full)
            if isinstance(given, Namespace) and "class_path" in given:
                if isinstance(saved, Namespace) and saved.get("class_path") != given.get("class_path"):
                    raise CheckpointMismatchError(
                        f"--{key} {given.class_path.rsplit('.', 1)[-1]} was given, but checkpoint {ckpt_path} was "
                        f"trained with {saved.get('class_path', '?').rsplit('.', 1)[-1]}; drop --{key} (the checkpoint "
                        f"decides the model's classes) or train that model with `aape fit`"
                    )
                continue
            if key.split(".")[-1] == "class_sets" and isinstance(saved, dict) and isinstance(given, dict):
                given = {**saved, **given}  # new class sets next to the trained ones
            config[full] = given

    def _check_kind(self, sub: str, hparams: dict, checkpoint: dict, ckpt_path: str) -> None:
        """Refuse a checkpoint of another task, data or head kind than the config asks for, before building anything.

        A class the config leaves at its default is not a request: the checkpoint's is used.
        """
        config, task = self.config[sub], hparams.get("_class_path")
        saved_data = (checkpoint.get("aape_data") or {}).get("class_path")
        asked_task, asked_data = config.get("model.class_path"), config.get("data.class_path")
        data_reused = sub in ("test", "validate") and config.get("data.init_args.reader") is None  # from the checkpoint
        asked = None
        if task and asked_task and _short(asked_task) not in (_short(DEFAULT_CLASSES["model"]), _short(task)):
            asked = f"the config asks for a {_short(asked_task)}"
        elif not data_reused and None not in (_data_kind(saved_data), _data_kind(asked_data)) and \
                _data_kind(saved_data) != _data_kind(asked_data):  # NoCaps after CaptionDataModule is the same kind
            asked = f"the config asks for {_short(asked_data)} data"
        if asked:
            raise CheckpointMismatchError(
                f"checkpoint {ckpt_path} is a {_short(task)} trained on {_short(saved_data)} data, but {asked}; give "
                f"that checkpoint a config of its kind (`aape {sub} --ckpt_path <ckpt>` alone reuses its data for "
                f"test/validate) or give a checkpoint trained with this config"
            )
        saved_head = hparams["head"].get("class_path") if isinstance(hparams.get("head"), dict) else None
        asked_head = config.get("model.init_args.head.class_path")
        head_typed = any(k.startswith("model.head") for k in typed_model_keys(AAPEArgumentParser.argv))  # refused later
        default_head = _init_default(asked_task, "head")
        if saved_head and asked_head and not head_typed and _short(asked_head) not in (_short(saved_head), default_head):
            raise CheckpointMismatchError(
                f"checkpoint {ckpt_path} was trained with head {_short(saved_head)}, but the config asks for "
                f"{_short(asked_head)}; drop model.head from the config (the checkpoint decides the model) or train "
                f"that head with `aape fit`"
            )

    def _check_backbone(self, sub: str, before: Namespace, ckpt_path: str) -> None:
        asked = before.get("model.init_args.backbone")
        if asked is None or asked == "demo":  # the default: nothing was asked for
            return
        got = self.config[sub].get("model.init_args.backbone")
        if got != asked:
            raise CheckpointMismatchError(
                f"checkpoint {ckpt_path} was trained on backbone {got!r}, but "
                f"model.backbone={asked!r} was given; drop model.backbone to use the checkpoint's"
            )

    def _data_from_checkpoint(self, sub: str, checkpoint: dict) -> None:
        """``aape test --ckpt_path X`` alone: reuse the data settings the model was trained with."""
        data = self.config[sub].get("data")
        if data is None or data.get("init_args", {}).get("reader") is not None:
            return
        saved = checkpoint.get("aape_data")
        if saved:
            self.config = self.parser.parse_object({sub: {"data": saved}}, self.config)

    def instantiate_classes(self) -> None:
        self.config = plain_numbers(self.config)
        super().instantiate_classes()
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config  # no subcommand: built with run=False (the table)
        if sub in ("fit", None) and hasattr(self.model, "data_config") and config.get("data") is not None:
            self.model.data_config = config["data"].as_dict()  # kept in checkpoints for `aape test`

    # -- running ----------------------------------------------------------------------------
    def _run_subcommand(self, subcommand: str) -> None:
        """Refuse an unwritable run folder up front; a run refused by a user error leaves no new folder behind."""
        roots = {Path(self.trainer.default_root_dir)}
        roots |= {Path(lg.save_dir) for lg in self.trainer.loggers if getattr(lg, "save_dir", None)}
        for root in roots:
            _check_writable(root, "the run folder", "--trainer.default_root_dir")
        watched = _watch([Path(lg.root_dir) for lg in self.trainer.loggers if getattr(lg, "root_dir", None)] or list(roots))
        try:
            if _rank_zero():
                for logger in self.trainer.loggers:
                    claim_version(logger)
            super()._run_subcommand(subcommand)
        except Exception as err:
            started = self.trainer.global_step > 0
            if user_error(err) is not None and not started and _rank_zero():
                _remove_new_folders(watched)
            raise

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        """Lightning's results table repeats each metric, unrounded, once per dataloader: ``aape`` prints its own."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if "verbose" in kwargs and not any(a.startswith("--verbose") for a in AAPEArgumentParser.argv):
            kwargs["verbose"] = False
        return kwargs

    def after_validate(self) -> None:
        self._print_metrics("validate")

    def after_test(self) -> None:
        self._print_metrics("test")
        results = getattr(self.model, "test_results", None)
        if results and self.trainer.is_global_zero:
            print("test: " + " | ".join(f"{k} {v:.2f}" for k, v in results.items()))

    def _print_metrics(self, stage: str) -> None:
        """Each logged metric once, rounded; one column per dataloader only where their values differ."""
        if not self.trainer.is_global_zero or not self.trainer.callback_metrics:
            return
        rows: dict[str, dict[int, float]] = {}
        for key, value in self.trainer.callback_metrics.items():
            name, _, idx = key.partition("/dataloader_idx_")
            rows.setdefault(name, {})[int(idx or 0)] = float(value)
        width = max(len(name) for name in rows) + len(stage) + 1
        for name, values in sorted(rows.items()):
            shown = sorted({round(v, 4) for v in values.values()})
            cells = f"{shown[0]:.4g}" if len(shown) == 1 else "  ".join(f"[{i}] {v:.4g}" for i, v in sorted(values.items()))
            print(f"{name if name.startswith(stage) else f'{stage}/{name}':<{width}}  {cells}")


class KeepEarlierConfig(SaveConfigCallback):
    """Save the run's ``config.yaml``; one an earlier run left in the same folder is moved aside, not a refusal.

    With ``trainer.logger: false`` every run shares ``default_root_dir``: a run that failed early
    would otherwise block every rerun there ("config.yaml to NOT exist").
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir and not self.overwrite:
            log_dir = trainer.log_dir  # broadcast: every rank calls it
            path = Path(log_dir) / self.config_filename if log_dir else None
            if path is not None and trainer.is_global_zero and path.is_file():
                aside = _free_name(path, time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime)))
                path.rename(aside)
                log.warning("%s was left by an earlier run in this folder; kept as %s", path, aside.name)
        super().setup(trainer, pl_module, stage)


def _free_name(path: Path, stamp: str) -> Path:
    """``config.yaml`` -> ``config.<stamp>.yaml`` (``.1``, ``.2``, ... when taken)."""
    candidate, n = path.with_name(f"{path.stem}.{stamp}{path.suffix}"), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{stamp}.{n}{path.suffix}")
    return candidate


def claim_version(logger) -> None:
    """Take the logger's ``version_N`` folder with ``mkdir`` (atomic): runs started together never share one.

    Lightning's TensorBoard and CSV loggers pick ``max(version_*) + 1`` by listing the folder, so two
    runs started at once in one ``default_root_dir`` both take it and one dies saving its config.
    """
    root = getattr(logger, "root_dir", None)
    if getattr(logger, "_version", 0) is not None or not root or "://" in str(root) or not hasattr(logger, "_get_next_version"):
        return  # a version given by the user, or a logger without version folders
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    version = logger._get_next_version()
    while True:
        try:
            (root / f"version_{version}").mkdir()
        except FileExistsError:
            version += 1
            continue
        logger._version = version
        return


def plain_numbers(value):
    """The config with each bounded number (``PositiveInt(3)``, an ``int`` subclass) as a plain ``int``/``float``.

    The bounds are checked while parsing; the values go on into hyperparameters and checkpoints, which
    ``torch.load(weights_only=True)`` must read without jsonargparse's classes.
    """
    if isinstance(value, Namespace):
        return Namespace(**{key: plain_numbers(child) for key, child in vars(value).items()})
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_numbers(v) for v in value)
    if isinstance(value, bool) or type(value) in (int, float):
        return value
    for number in (int, float):
        if isinstance(value, number):
            return number(value)
    return value


def _rank_zero() -> bool:
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def _run_root(ckpt: Path) -> Path:
    """``<root>/lightning_logs/version_N/checkpoints/x.ckpt`` -> ``<root>``; else the checkpoint's folder."""
    parents = ckpt.resolve().parents
    if parents[0].name == "checkpoints" and len(parents) > 3 and parents[1].name.startswith("version_"):
        return parents[3]
    return parents[0]


def _check_writable(path: Path, what: str, option: str) -> None:
    """Refuse before any work when ``path`` (a folder, made if absent) cannot be written."""
    path = path.expanduser()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UnwritableError(f"cannot write {what} {path}: {existing} is a file, not a folder; set {option} to a writable folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UnwritableError(f"cannot write {what} {path}: no write permission on {existing}; set {option} to a writable folder")


def _watch(roots: list[Path]) -> list[tuple[Path, set[str] | None]]:
    """Each root with its entries now (None: the root does not exist yet), and its missing parents."""
    watched = []
    for root in roots:
        root = root.expanduser().resolve()
        for folder in [root, *[p for p in root.parents if not p.exists()]]:
            watched.append((folder, set(os.listdir(folder)) if folder.is_dir() else None))
    return watched


def _remove_new_folders(watched: list[tuple[Path, set[str] | None]]) -> None:
    """Delete folders this run created, unless they hold a checkpoint (never delete earlier results)."""
    for folder, before in watched:
        if not folder.is_dir():
            continue
        new = [folder / n for n in os.listdir(folder) if n not in (before or set())]
        for path in new:
            if path.is_dir() and not any(path.rglob("*.ckpt")):
                shutil.rmtree(path, ignore_errors=True)
        if before is None and not any(folder.iterdir()):
            folder.rmdir()


def lightning_main(args: list[str] | None = None, run: bool = True, description: str = "AAPE on a frozen CLIP.") -> AAPECLI:
    """The LightningCLI; ``run=False`` only builds model, data and trainer (for the table runner).

    ``description`` heads ``aape <command> --help``: the command tree (``cli``) passes its list of commands.
    """
    load_plugins()
    AAPEArgumentParser.argv = list(sys.argv[1:] if args is None else args)
    AAPEArgumentParser.cwd = os.getcwd()
    check_config_files(AAPEArgumentParser.argv)
    check_moved_keys(AAPEArgumentParser.argv)
    return AAPECLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_class=AAPEArgumentParser,
        save_config_callback=KeepEarlierConfig,
        seed_everything_default=1,
        args=args,
        run=run,
        parser_kwargs={"description": description},
    )
