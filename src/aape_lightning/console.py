"""How ``aape`` writes to the console: its logging format and the library warnings it quiets.

A foundation module (standard library only): the CLI, the LightningCLI and the table's worker
processes all run ``configure_output``, and none of them has to import another to get it.
"""

from __future__ import annotations

import logging
import os
import warnings


def _no_tips(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")  # Lightning's adverts for its cloud services, once per run


def configure_output() -> None:
    """``aape``'s logging format and its quieted warnings; also run by the table's worker processes."""
    logging.basicConfig(level=os.environ.get("AAPE_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_tips)
    # Lightning gives its logger a console handler of its own on import; without this, each of its
    # lines would print twice (its handler, then ours through the root)
    logging.getLogger("lightning").propagate = False
    warnings.filterwarnings("ignore", message=".*pkg_resources is deprecated.*")
    warnings.filterwarnings("ignore", message="LightningCLI.s args parameter is intended")  # the table runs in-process
    # Lightning's warnings that say nothing a user of this package can act on:
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")  # Lightning vs torch
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # the frozen CLIP, by design
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from .* won't be reloaded")  # test/predict
    warnings.filterwarnings("ignore", message=r"Total length of `\w+` across ranks is zero")  # an empty class set
