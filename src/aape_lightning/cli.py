"""The ``aape`` entry point: LightningCLI (fit / validate / test / predict) plus extra commands.

It imports no task, head or dataset: ``PLUGIN_PACKAGES`` (data) are imported when the
LightningCLI is built, which is what makes their short class names valid in YAML, and the extra
commands are imported only when called.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from importlib import import_module
from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from aape_lightning.errors import CheckpointMismatchError, UserError

# Packages whose classes YAML may name by their short name (each re-exports them in ``__all__``).
PLUGIN_PACKAGES = ("aape_lightning.tasks", "aape_lightning.heads", "aape_lightning.core", "aape_lightning.data",
                   "aape_lightning.demo", "aape_lightning.callbacks")

# name -> "module:function" taking argv and returning an exit code
EXTRA_COMMANDS: dict[str, str] = {
    "table": "aape_lightning.experiments.table:table_main",
    "explain": "aape_lightning.experiments.explain:explain_main",
    "demo": "aape_lightning.demo.cli:demo_main",
    "prompts": "aape_lightning.prompts.cli:prompts_main",
    "data": "aape_lightning.data.classification.data_cli:data_main",
}


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
    """Parse errors as one message (no page of usage), naming the known classes when a name is unknown."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        unknown = sorted(set(re.findall(r"Expected a dot import path string: (\S+)", message)))
        hint = ""
        if unknown:
            kinds = "; ".join(f"{kind}: {', '.join(n)}" for kind, n in known_classes().items())
            hint = f"\nunknown class {', '.join(unknown)}. Known {kinds}. A full import path (package.module.Class) works too."
        sys.stderr.write(f"aape: error: {message}{hint}\nSee `aape <subcommand> --help` for the options.\n")
        sys.exit(2)


class AAPECLI(LightningCLI):
    """LightningCLI in subclass mode: tasks, heads, readers and data modules by ``class_path``."""

    def add_arguments_to_parser(self, parser) -> None:
        from aape_lightning.callbacks import PredictionWriter, RunRecord

        parser.add_lightning_class_args(PredictionWriter, "predictions")
        parser.add_lightning_class_args(RunRecord, "run_record")
        parser.set_defaults(
            {
                "model": {"class_path": "aape_lightning.tasks.ClassificationTask"},
                "data": {"class_path": "aape_lightning.data.ClassificationDataModule"},
            }
        )

    def _parse_ckpt_path(self) -> None:
        """Model settings (and, if none are given, the data's) come from the checkpoint; refuse a backbone clash."""
        sub = self.config.get("subcommand")
        model = self.config[sub].get("model") if sub else None
        asked = model.get("init_args", {}).get("backbone") if model is not None else None
        super()._parse_ckpt_path()
        self._data_from_checkpoint(sub)
        if asked is None or asked == "demo":  # the default: nothing was asked for
            return
        got = self.config[sub]["model"].get("init_args", {}).get("backbone")
        if got != asked:
            raise CheckpointMismatchError(
                f"checkpoint {self.config[sub].get('ckpt_path')} was trained on backbone {got!r}, but "
                f"model.backbone={asked!r} was given; drop model.backbone to use the checkpoint's"
            )

    def _data_from_checkpoint(self, sub: str | None) -> None:
        """``aape test --ckpt_path X`` alone: reuse the data settings the model was trained with."""
        ckpt_path = self.config[sub].get("ckpt_path") if sub in ("test", "validate") else None
        data = self.config[sub].get("data") if ckpt_path else None
        if data is None or data.get("init_args", {}).get("reader") is not None or not Path(ckpt_path).is_file():
            return
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("aape_data")
        if saved:
            self.config = self.parser.parse_object({sub: {"data": saved}}, self.config)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config  # no subcommand: built with run=False (the table)
        if sub in ("fit", None) and hasattr(self.model, "data_config") and config.get("data") is not None:
            self.model.data_config = config["data"].as_dict()  # kept in checkpoints for `aape test`

    def after_test(self) -> None:
        results = getattr(self.model, "test_results", None)
        if results and self.trainer.is_global_zero:
            print("test: " + " | ".join(f"{k} {v:.2f}" for k, v in results.items()))


def lightning_main(args: list[str] | None = None, run: bool = True) -> AAPECLI:
    """The LightningCLI; ``run=False`` only builds model, data and trainer (for the table runner)."""
    for package in PLUGIN_PACKAGES:
        import_module(package)
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
            if EXTRA_COMMANDS
            else "AAPE on a frozen CLIP."
        },
    )


def main(args: list[str] | None = None) -> int:
    """Run ``aape``; user errors print one line naming the file, value and fix, and exit 2."""
    argv = list(sys.argv[1:] if args is None else args)
    args = None if args is None else argv  # LightningCLI reads sys.argv itself when run as a script
    logging.basicConfig(level=os.environ.get("AAPE_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message=".*pkg_resources is deprecated.*")
    warnings.filterwarnings("ignore", message="LightningCLI.s args parameter is intended")  # the table runs in-process
    try:
        if argv and argv[0] in EXTRA_COMMANDS:
            module, func = EXTRA_COMMANDS[argv[0]].split(":")
            return int(getattr(__import__(module, fromlist=[func]), func)(argv[1:]) or 0)
        lightning_main(args)
    except Exception as err:
        user_error = _user_error(err)
        if user_error is None:
            raise
        print(f"aape: error: {user_error}", file=sys.stderr)
        return 2
    return 0


def _user_error(err: BaseException | None) -> BaseException | None:
    """The user-facing error behind ``err``, also when jsonargparse wrapped it while instantiating."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
