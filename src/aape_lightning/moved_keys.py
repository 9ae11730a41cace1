"""Keys that moved to one place in every task (issue 26): a config that still gives one is refused, naming the new key."""

from __future__ import annotations

from pathlib import Path

import yaml

from aape_lightning.errors import ConfigError

# Keys that moved to one place in every task (issue 26), without ``init_args``: old key -> where it is now.
MOVED = {"model.head.core": "model.core", "model.optimizer": "model.optim.optimizer",
         "model.schedule": "model.optim.schedule", "model.warmup_epochs": "model.optim.warmup_epochs",
         "model.warmup_lr": "model.optim.warmup_lr"}


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
