"""The LightningCLI behind ``aape fit / validate / test / predict``, with what a user needs on top.

Imported only by those commands (lightning takes seconds to import). On top of LightningCLI:
parse errors as one line (cli_parser.py); config files and moved keys checked before parsing
(command_line.py, moved_keys.py); ``--ckpt_path`` is checked (missing, truncated, ``last`` = the
newest checkpoint under the run's root, another task / data / head kind); the checkpoint's model
settings are used except where the command line gives one, which is applied or refused; a checkpoint
saved before keys moved is read in the new layout; the run's folders (run_folders.py).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from importlib import import_module
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from aape_lightning.callbacks import PredictionWriter, RunRecord
from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.errors import CheckpointMismatchError, user_error
from aape_lightning.lightning_cli.command_line import check_config_files, full_key, typed_model_keys
from aape_lightning.lightning_cli.moved_keys import (
    MOVED,
    OPTIMIZER_ARGS,
    check_moved_keys,
    upgrade_class_paths,
    upgrade_hparams,
)
from aape_lightning.lightning_cli.parser import AAPEArgumentParser
from aape_lightning.lightning_cli.plugins import load_plugins
from aape_lightning.lightning_cli.run_folders import (
    KeepEarlierConfig,
    check_writable,
    claim_version,
    rank_zero,
    remove_new_folders,
    run_root,
    watch_folders,
)
from aape_lightning.tasks.checkpoint import find_last_checkpoint, read_checkpoint
from aape_lightning.tasks.optim import OPTIMIZERS

log = logging.getLogger(__name__)

EVALUATING = ("validate", "test", "predict")
# The classes a run uses when its config names none (``model``/``data`` given without a class_path).
DEFAULT_CLASSES = {"model": "aape_lightning.tasks.ClassificationTask",
                   "data": "aape_lightning.data.ClassificationDataModule"}


def _short(class_path: str | None) -> str:
    return (class_path or "?").rsplit(".", 1)[-1]


def _data_kind(class_path: str | None) -> str | None:
    """A data module's family: its ancestor just below ``ImageDataModule`` (NoCapsDataModule -> CaptionDataModule)."""
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


class AAPECLI(LightningCLI):
    """LightningCLI in subclass mode: tasks, heads, readers and data modules by ``class_path``."""

    def add_arguments_to_parser(self, parser) -> None:
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
        hparams = self._upgrade_moved_keys(sub, hparams, ckpt_path)
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
            self.config[sub].trainer.default_root_dir = str(run_root(Path(ckpt_path)))

    @staticmethod
    def _upgrade_moved_keys(sub: str, hparams: dict, ckpt_path: str) -> dict:
        """A checkpoint saved before the keys moved (issue 26) is read in the new layout, so it still tests and predicts.

        An old optimiser setting ``model.optim`` cannot hold does not matter to evaluation (left out, with a
        warning) but would change a resumed ``fit``, which is refused.
        """
        hparams, found, dropped = upgrade_hparams(hparams)
        if found:
            log.info("checkpoint %s was saved before its model settings moved: read %s", ckpt_path,
                     ", ".join(f"{old} as {MOVED[old]}" for old in found))
        if dropped and sub == "fit":
            raise CheckpointMismatchError(
                f"checkpoint {ckpt_path} was trained with {', '.join(dropped)}, which model.optim cannot hold "
                f"(optimizer: {' or '.join(OPTIMIZERS)}, {', '.join(OPTIMIZER_ARGS)}); resume it with the aape "
                f"version that trained it, or start a new fit"
            )
        if dropped:
            log.warning("checkpoint %s: %s left out (model.optim cannot hold it; %s does not train)", ckpt_path,
                        ", ".join(dropped), sub)
        return hparams

    def _apply_typed_model_values(self, sub: str, before: Namespace, ckpt_path: str) -> None:
        """Put back what the command line gave for the model: never silently replaced by the checkpoint's value."""
        config = self.config[sub]
        for key in typed_model_keys(type(self.parser).argv):
            given = before.get(full_key(before, key))
            full = full_key(config, key)
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
        saved = upgrade_class_paths(checkpoint.get("aape_data"))
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
            check_writable(root, "the run folder", "--trainer.default_root_dir")
        watched = watch_folders([Path(lg.root_dir) for lg in self.trainer.loggers if getattr(lg, "root_dir", None)] or list(roots))
        try:
            if rank_zero():
                for logger in self.trainer.loggers:
                    claim_version(logger)
            super()._run_subcommand(subcommand)
        except Exception as err:
            started = self.trainer.global_step > 0
            if user_error(err) is not None and not started and rank_zero():
                remove_new_folders(watched)
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
