"""The ``aape`` command: the command tree (commands.py), the LightningCLI subclass (lightning.py) and its parts.

Its parts: one-line parse errors (parser.py), config files checked before parsing (command_line.py), keys that
moved (moved_keys.py), short class names (plugins.py), run folders (run_folders.py). Only the command tree is
imported here: ``aape --help`` and ``aape data list`` must not import torch or lightning.
"""

from aape_lightning.cli.commands import entry, main

__all__ = ["entry", "main"]
