"""What the command line gives, read beside jsonargparse: its config files checked as YAML, where a key was given,
the model keys typed (which a checkpoint's settings never replace) and their place in the nested config."""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonargparse import Namespace

from aape_lightning.errors import ConfigError


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



def where_given(key: str, argv: list[str], cwd: str) -> str:
    """The command line when an option there ends in ``key``, else the last config file with ``key`` at any depth.

    ``cwd``: where the command was typed (jsonargparse changes into a config's folder while it reads it).
    """
    if any(a.startswith("--") and a[2:].split("=", 1)[0].rsplit(".", 1)[-1] == key for a in argv):
        return "command line"
    files = []
    for flag, value in zip(argv, argv[1:]):
        path = Path(cwd, value)
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


def full_key(config: Namespace, key: str) -> str:
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
