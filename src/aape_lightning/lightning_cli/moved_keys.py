"""Keys that moved to one place in every task (issue 26): a config that still gives one is refused, naming the
new key; a checkpoint saved before the move is read in the new layout (``aape test --ckpt_path old.ckpt``)."""

from __future__ import annotations

import copy
import inspect
from importlib import import_module
from pathlib import Path

import yaml

from aape_lightning.errors import ConfigError
from aape_lightning.tasks.optim import OPTIMIZERS

# Keys that moved to one place in every task (issue 26), without ``init_args``: old key -> where it is now.
MOVED = {"model.head.core": "model.core", "model.optimizer": "model.optim.optimizer",
         "model.schedule": "model.optim.schedule", "model.warmup_epochs": "model.optim.warmup_epochs",
         "model.warmup_lr": "model.optim.warmup_lr"}
# Classes that moved (issue 26: the demo readers live in demo/, above the data layer): where a checkpoint's saved
# data settings may name one -> where it is now.
MOVED_CLASSES = {
    f"aape_lightning.{where}.{name}": f"aape_lightning.demo.{name}"
    for name, places in {"DemoCaptionReader": ("data", "data.captions", "data.captions.readers"),
                         "DemoVQAReader": ("data", "data.vqa", "data.vqa.readers"),
                         "DemoReader": ("demo.reader",)}.items()
    for where in places
}  # fmt: skip
# The old optimiser's own arguments that sit beside its name now (``model.optimizer.lr`` -> ``model.optim.lr``).
OPTIMIZER_ARGS = ("lr", "weight_decay", "momentum")
_ABSENT = object()


def check_moved_keys(argv: list[str]) -> None:
    """Refuse a key that moved (``model.head.core`` -> ``model.core``) in one line naming it, on the command line or in a ``--config``.

    Without this jsonargparse's refusal is a dozen lines about Union subtypes that never say where the key went.
    """

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
            if old == "model.optimizer" and rest and rest[0] in OPTIMIZER_ARGS:
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


def upgrade_hparams(hparams: dict) -> tuple[dict, list[str], list[str]]:
    """A checkpoint's model settings saved before the keys moved, in the new layout, by the same ``MOVED`` table.

    Returns the settings, the old keys that were found (and moved), and the old optimiser settings that
    ``model.optim`` has no place for: another class than ``OPTIMIZERS``', or an argument away from torch's
    default (``nesterov: true``). The optimiser was a class with its arguments (``{class_path:
    torch.optim.SGD, init_args: {lr: ...}}``); now it is a name with ``OPTIMIZER_ARGS`` beside it.
    """
    hparams = copy.deepcopy(hparams)
    found, dropped = [], []
    for old, new in MOVED.items():
        *parents, last = old.split(".")[1:]  # the keys under ``model``
        node = _walk(hparams, parents)
        if not isinstance(node, dict) or last not in node:
            continue
        value = node.pop(last)
        found.append(old)
        *parents, last = new.split(".")[1:]
        node = _walk(hparams, parents, make=True)
        if old == "model.optimizer":
            value, beside, left_out = _optimizer_settings(value)
            node.update(beside)
            dropped += left_out
        if value is not _ABSENT:
            node[last] = value
    return hparams, found, dropped


def upgrade_class_paths(node):
    """Saved settings (a checkpoint's ``aape_data``) with each ``class_path`` that ``MOVED_CLASSES`` lists at its new place."""
    if isinstance(node, dict):
        return {key: MOVED_CLASSES.get(value, value) if key == "class_path" and isinstance(value, str)
                else upgrade_class_paths(value) for key, value in node.items()}  # fmt: skip
    if isinstance(node, list):
        return [upgrade_class_paths(value) for value in node]
    return node


def _walk(node, parts: list[str], make: bool = False):
    """The mapping at ``parts`` below ``node``, through each ``init_args`` on the way (made where absent if ``make``)."""
    for part in parts:
        node = node.get("init_args", node) if isinstance(node, dict) and "class_path" in node else node
        if not isinstance(node, dict) or (part not in node and not make):
            return None
        node = node.setdefault(part, {})
    return node.get("init_args", node) if isinstance(node, dict) and "class_path" in node else node


def _optimizer_settings(old) -> tuple[object, dict, list[str]]:
    """An old ``model.optimizer`` as (its name in ``OPTIMIZERS``, its ``OPTIMIZER_ARGS``, the settings left out)."""
    old = {"class_path": old} if isinstance(old, str) else dict(old or {})
    path = old.get("class_path") or "?"
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        cls = None
    args = dict(old.get("init_args") or {})
    beside = {key: args.pop(key) for key in OPTIMIZER_ARGS if key in args}
    known = next((n for n, c in OPTIMIZERS.items() if c is cls), None)
    if known is None:
        return _ABSENT, beside, [f"optimizer {path}"]
    defaults = inspect.signature(cls).parameters

    def plain(value):  # a saved tuple default (AdamW's betas) reads back as a list
        return list(value) if isinstance(value, tuple) else value

    left_out = [f"{name}.{key}={value!r}" for key, value in args.items()
                if key not in defaults or plain(value) != plain(defaults[key].default)]
    return known, beside, left_out
