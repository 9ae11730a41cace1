"""The LightningCLI of ``aape fit / validate / test / predict``: the subclass (aape_cli.py) and its parts.

Its parts: one-line parse errors (parser.py), config files checked before parsing (command_line.py), keys that
moved (moved_keys.py), short class names (plugins.py), run folders (run_folders.py). The command tree that
calls it is ``aape_lightning.cli``; the table runner builds its runs with ``lightning_main(args, run=False)``.
"""
