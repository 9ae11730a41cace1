"""The ``aape`` entry point: fit / validate / test / predict (LightningCLI) plus extra commands.

Nothing heavy is imported up front: ``aape --help`` and the extra commands (``aape data list``,
``aape demo --help``) start without torch or lightning; the LightningCLI (``lightning_cli``) is
imported only by the four training commands.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import warnings
from importlib import import_module

from aape_lightning.errors import PathError, UserError

# name -> "module:function" taking argv and returning an exit code
EXTRA_COMMANDS: dict[str, str] = {
    "table": "aape_lightning.experiments.table:table_main",
    "explain": "aape_lightning.experiments.explain:explain_main",
    "demo": "aape_lightning.demo.cli:demo_main",
    "prompts": "aape_lightning.prompts.cli:prompts_main",
    "data": "aape_lightning.data.classification.data_cli:data_main",
    "cache": "aape_lightning.data.feature_store:cache_main",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

USAGE = """\
usage: aape {fit,validate,test,predict} [--config FILE] [--OPTION VALUE ...]
       aape {table,explain,data,prompts,demo,cache} ...

AAPE on a frozen CLIP.

training and evaluation (`aape <command> --help` lists every option):
  fit        train a head:          aape fit --config configs/demo/fewshot.yaml
  validate   one validation pass
  test       accuracy per class set and H:  aape test --ckpt_path <run>/checkpoints/<x>.ckpt
  predict    predictions.csv of a folder:   aape predict --ckpt_path <ckpt> --data.predict_dir <folder>
             resume an interrupted fit:     aape fit --config <same config> --ckpt_path last

other commands:
  table      every method x dataset x seed as one table (aape table --config configs/table/demo_quick.yaml)
  explain    which prompts and image regions decided a prediction (aape explain --help)
  data       list, prepare and check datasets (aape data list)
  prompts    generate and check prompt banks
  demo       the offline demo world: build its CLIP and datasets, probe a head
  cache      what the image-feature store holds, or empty it (aape cache info | aape cache clear)
"""


def lightning_main(args: list[str] | None = None, run: bool = True):
    """The LightningCLI; ``run=False`` only builds model, data and trainer (for the table runner)."""
    from aape_lightning.lightning_cli import lightning_main as build

    return build(args, run)


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


def main(args: list[str] | None = None) -> int:
    """Run ``aape``; user errors print one line naming the file, value and fix, and exit 2."""
    argv = list(sys.argv[1:] if args is None else args)
    args = None if args is None else argv  # LightningCLI reads sys.argv itself when run as a script
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    configure_output()
    try:
        if argv[0] in EXTRA_COMMANDS:
            module, func = EXTRA_COMMANDS[argv[0]].split(":")
            return int(getattr(import_module(module), func)(argv[1:]) or 0)
        lightning_main(args)
    except Exception as err:
        refusal = user_error(err)
        if refusal is None:
            raise
        print(f"aape: error: {one_line(refusal)}", file=sys.stderr)
        return 2
    return 0


def user_error(err: BaseException | None) -> BaseException | None:
    """The user-facing error behind ``err``, also when jsonargparse wrapped it while instantiating.

    A path the system refuses (no permission, read-only or full disk, a file where a folder must be)
    is the user's to fix too: one line naming the path and the errno's meaning. Not when another
    error was raised while handling it (that one is a bug to show).
    """
    seen, handled = set(), False
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        if isinstance(err, OSError) and err.filename is not None and err.errno in errno.errorcode and not handled:
            return PathError(path_error_line(err))
        seen.add(id(err))
        handled = handled or err.__cause__ is None
        err = err.__cause__ or err.__context__
    return None


def path_error_line(err: OSError) -> str:
    """``cannot use /sys/x: Operation not permitted (EPERM)``; both paths of a failed rename or link."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    return (f"cannot use {paths}: {os.strerror(err.errno)} ({errno.errorcode[err.errno]}); "
            f"choose a path this user can write (or fix its permissions / free space)")


def one_line(err: BaseException) -> str:
    """The error's own message; one raised in a DataLoader worker arrives wrapped in the worker's traceback."""
    text = str(err)
    if "Original Traceback" in text:  # torch's ExceptionWrapper: "Caught X in DataLoader worker ...\nTraceback..."
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        text = re.sub(r"^[\w.]*(Error|Exception)\w*: ", "", last.strip())
    return text


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
