"""No YAML under configs/ restates a default: a key whose value equals the class's default is noise that
drifts when the default changes. A line marked ``# pinned`` is deliberate (a preset pinning a recipe, or a
value that must override a base config stacked before it). ``class_path`` is never counted: it names the method."""

from __future__ import annotations

import dataclasses
import inspect
from importlib import import_module
from pathlib import Path

import lightning
import yaml

from aape_lightning.lightning_cli.plugins import PLUGIN_PACKAGES, load_plugins

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ROOTS = {"trainer": lightning.Trainer}  # top-level keys whose class is fixed; model and data name theirs


def resolve(class_path: str) -> type:
    """A short YAML name (``AAPEHead``) or a dotted path (``torch.optim.SGD``) -> the class."""
    if "." in class_path:
        module, name = class_path.rsplit(".", 1)
        return getattr(import_module(module), name)
    load_plugins()
    for package in PLUGIN_PACKAGES:
        module = import_module(package)
        if class_path in getattr(module, "__all__", ()):
            return getattr(module, class_path)
    raise LookupError(f"class {class_path!r} not found in {PLUGIN_PACKAGES}")


def _defaults(cls: type) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(cls).parameters.items() if p.kind is not p.VAR_KEYWORD}


def restated(node: dict, cls: type, where: str, pinned: set[str]) -> list[str]:
    """``where.key = value`` for each option of ``cls`` in ``node`` equal to its default, walking nested classes."""
    found = []
    params = _defaults(cls)
    for key, value in node.items():
        param, here = params.get(key), f"{where}.{key}"
        if param is None:
            continue
        default = param.default
        if isinstance(value, dict) and "class_path" in value:
            found += restated(value.get("init_args") or {}, resolve(value["class_path"]), here, pinned)
        elif isinstance(value, dict) and dataclasses.is_dataclass(default):
            fields = dataclasses.asdict(default)
            found += [f"{here}.{k} = {v!r}" for k, v in value.items()
                      if k in fields and v == fields[k] and f"{here}.{k}" not in pinned]  # fmt: skip
        elif default is not inspect.Parameter.empty and value == default and here not in pinned:
            found += [f"{here} = {value!r}"]
    return found


def pinned_keys(path: Path) -> set[str]:
    """Dotted keys (``init_args`` left out) of the lines that carry a ``# pinned`` comment."""
    keys, stack = set(), []
    for line in path.read_text(encoding="utf-8").splitlines():
        body = line.split("#", 1)[0]
        if ":" not in body or body.lstrip().startswith("-"):
            continue
        indent, key = len(body) - len(body.lstrip()), body.strip().split(":", 1)[0]
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
        if "# pinned" in line:
            keys.add(".".join(k for _, k in stack if k != "init_args"))
    return keys


def config_restated(path: Path) -> list[str]:
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    pinned = pinned_keys(path)
    found = []
    for key, value in cfg.items():
        if key in ROOTS and isinstance(value, dict):
            found += restated(value, ROOTS[key], key, pinned)
        elif isinstance(value, dict) and "class_path" in value:
            found += restated(value.get("init_args") or {}, resolve(value["class_path"]), key, pinned)
    return found


def test_no_config_restates_a_default():
    configs = sorted(p for p in CONFIGS.rglob("*.yaml") if "table" not in p.relative_to(CONFIGS).parts)
    assert len(configs) > 30
    found = [f"{path.relative_to(CONFIGS.parent)}: {f}" for path in configs for f in config_restated(path)]
    assert not found, "drop these (or mark the line `# pinned`):\n" + "\n".join(found)


def test_the_walk_finds_a_restated_default_and_honours_pinned(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "model:\n  class_path: ClassificationTask\n  init_args:\n"
        "    head:\n      class_path: AAPEHead\n      init_args:\n        hidden: 32\n        residual: false\n"
        "    core:\n      class_path: AAPECore\n      init_args:\n        distill_weight: 5.0  # pinned\n"
        "        reward_scale: 2.5\n"
        "    optim:\n      lr: 0.001\n      warmup_epochs: 1\n"
        "trainer:\n  accelerator: auto\n  max_epochs: 3\n"
    )
    assert config_restated(config) == ["model.head.hidden = 32", "model.core.reward_scale = 2.5",
                                       "model.optim.lr = 0.001", "trainer.accelerator = 'auto'"]
