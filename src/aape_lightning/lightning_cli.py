"""The LightningCLI behind ``aape fit / validate / test / predict``, with what a user needs on top.

Imported only by those commands (lightning takes seconds to import). On top of LightningCLI:
a typo in a config names its file and the closest valid key; ``--ckpt_path`` is checked
(missing, truncated, ``last`` = the newest checkpoint under the run's root); the checkpoint's
model settings are used except where the command line gives one, which is applied or refused;
test and predict from a checkpoint alone log beside the checkpoint's run; a run refused before
it starts leaves no run folder behind.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import shutil
import sys
from importlib import import_module
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from aape_lightning.errors import CheckpointMismatchError, UnwritableError, UserError

# Packages whose classes YAML may name by their short name (each lists them in ``__all__``).
PLUGIN_PACKAGES = ("aape_lightning.tasks", "aape_lightning.heads", "aape_lightning.core", "aape_lightning.data",
                   "aape_lightning.demo", "aape_lightning.callbacks")
EVALUATING = ("validate", "test", "predict")
# The classes a run uses when its config names none (``model``/``data`` given without a class_path).
DEFAULT_CLASSES = {"model": "aape_lightning.tasks.ClassificationTask",
                   "data": "aape_lightning.data.ClassificationDataModule"}


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
    """Parse errors as one message (no page of usage): a typo names its file and the closest key."""

    argv: list[str] = []  # the command line, to find which config file holds a bad key

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

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        typo = self._typo(message)
        if typo:
            sys.stderr.write(f"aape: error: {typo}\n")
            sys.exit(2)
        unknown = sorted(set(re.findall(r"Expected a dot import path string: (\S+)", message)))
        hint = ""
        if unknown:
            kinds = "; ".join(f"{kind}: {', '.join(n)}" for kind, n in known_classes().items())
            hint = f"\nunknown class {', '.join(unknown)}. Known {kinds}. A full import path (package.module.Class) works too."
        sys.stderr.write(f"aape: error: {message}{hint}\nSee `aape <subcommand> --help` for the options.\n")
        sys.exit(2)

    def _typo(self, message: str) -> str | None:
        """One line for an option no class accepts: where it was given and the closest valid name."""
        sub = next((a for a in self.argv if a in ("fit", "validate", "test", "predict")), "fit")
        option = re.search(r"Option '([^']+)' is not accepted", message)
        if option:
            key = option.group(1)
            owners = re.findall(r"Problem with given class_path '([^']+)'", message[: option.start()])
            owner = owners[-1] if owners else None
            valid = _init_parameters(owner) if owner else []
            what = f"{key!r} is not an option of {owner.rsplit('.', 1)[-1]}" if owner else f"{key!r} is not accepted"
        else:
            option = re.search(r"does not accept option '([^']+)'", message)
            if not option:
                return None
            key, valid = self._keys_like(sub, option.group(1))
            what = f"option {key!r} does not exist"
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        where = _where_given(key.rsplit(".", 1)[-1], self.argv)
        fix = f"did you mean {close[0]!r}?" if close else f"see `aape {sub} --help` for the options"
        return f"{where}: {what}; {fix}"

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


def _init_parameters(class_path: str) -> list[str]:
    """The ``__init__`` argument names of a class and of the bases its ``**kwargs`` pass to."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return []
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names += [p for p, v in params.items() if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
        if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
            break
    return sorted(set(names))


def _where_given(key: str, argv: list[str]) -> str:
    """The config file(s) on the command line whose text has ``key:``, else "command line"."""
    files = []
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-c", "--config") and Path(value).is_file():
            if re.search(rf"(^|[\s{{,]){re.escape(key)}\s*:", Path(value).read_text(encoding="utf-8", errors="replace"), re.M):
                files.append(value)
    return ", ".join(files) if files else "command line"


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
            super()._run_subcommand(subcommand)
        except Exception as err:
            started = self.trainer.global_step > 0
            if _is_user_error(err) and not started and os.environ.get("LOCAL_RANK", "0") == "0":
                _remove_new_folders(watched)
            raise

    def after_test(self) -> None:
        results = getattr(self.model, "test_results", None)
        if results and self.trainer.is_global_zero:
            print("test: " + " | ".join(f"{k} {v:.2f}" for k, v in results.items()))


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


def _is_user_error(err: BaseException | None) -> bool:
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def lightning_main(args: list[str] | None = None, run: bool = True) -> AAPECLI:
    """The LightningCLI; ``run=False`` only builds model, data and trainer (for the table runner)."""
    from aape_lightning.cli import EXTRA_COMMANDS

    load_plugins()
    AAPEArgumentParser.argv = list(sys.argv[1:] if args is None else args)
    return AAPECLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_class=AAPEArgumentParser,
        seed_everything_default=1,
        args=args,
        run=run,
        parser_kwargs={
            "description": "AAPE on a frozen CLIP. Extra commands: " + ", ".join(f"aape {c}" for c in EXTRA_COMMANDS)
        },
    )
