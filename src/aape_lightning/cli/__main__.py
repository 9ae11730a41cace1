"""``python -m aape_lightning.cli``: the ``aape`` command without its console script (torchrun, subprocess tests)."""

from aape_lightning.cli.commands import entry

entry()
