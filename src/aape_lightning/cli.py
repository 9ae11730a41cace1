"""The ``aape`` command tree: fit / validate / test / predict (the LightningCLI) and the other commands.

``prompts``, ``data`` and ``cache`` are parsed and run here; the library keeps what they call.
``table``, ``explain`` and ``demo`` are parsed where they live (experiments/, demo/). Start-up is
kept short: ``aape --help`` and ``aape data list`` import neither torch nor lightning, so each
command imports what it runs when it runs (the imports inside the functions below).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from aape_lightning.console import configure_output
from aape_lightning.errors import DataError, UserError, one_line, user_error

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
EXTRA_COMMANDS = ("table", "explain", "data", "prompts", "demo", "cache")

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
DESCRIPTION = "AAPE on a frozen CLIP. Extra commands: " + ", ".join(f"aape {c}" for c in EXTRA_COMMANDS)


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
            return int(run_command(argv[0], argv[1:]) or 0)
        # lazy (start-up): lightning takes seconds; only these four commands import it
        from aape_lightning.lightning_cli.aape_cli import lightning_main

        lightning_main(args, description=DESCRIPTION)
    except Exception as err:
        refusal = user_error(err)
        if refusal is None:
            raise
        print(f"aape: error: {one_line(refusal)}", file=sys.stderr)
        return 2
    return 0


def run_command(name: str, argv: list[str]) -> int:
    """One of ``EXTRA_COMMANDS`` with the words after its name; each imports its module only when it runs."""
    # lazy (start-up): every `aape` command imports this module; each command imports its own when it runs
    if name == "table":
        from aape_lightning.experiments.table import table_main

        return table_main(argv)
    if name == "explain":
        from aape_lightning.experiments.explain import explain_main

        return explain_main(argv)
    if name == "demo":
        from aape_lightning.demo.cli import demo_main

        return demo_main(argv)
    return {"prompts": prompts_main, "data": data_main, "cache": cache_main}[name](argv)


# -- aape prompts ---------------------------------------------------------------------------------
def _prompts_parser() -> argparse.ArgumentParser:
    # lazy (start-up): the prompts package triples the import time of `aape --help`
    from aape_lightning.prompts.fetch import CUPL_BANKS, CUPL_BASE_URL
    from aape_lightning.prompts.questions import DEFAULT_SYSTEM_PROMPT

    parser = argparse.ArgumentParser(prog="aape prompts", description="Prompt-bank tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser(
        "generate",
        help="ask a language model CuPL-style questions about each class",
        description=(
            "Write a CuPL-format bank {class: [sentences]}. Resumable: the bank is saved after every class "
            "and classes already in --out are skipped. Answers are kept as the model wrote them (first "
            "sentence, cleaned); --require-name keeps only those naming the class."
        ),
    )
    gen.add_argument("--classes", required=True, help="class names: a text file (one per line) or a CoOp split JSON")
    gen.add_argument("--out", required=True, help="the bank JSON to write (and to resume from)")
    gen.add_argument("--backend", choices=("openai", "transformers"), help="default: openai with --url, else transformers")
    gen.add_argument("--url", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    gen.add_argument("--model", help="model name sent to the endpoint")
    gen.add_argument("--api-key-env", help="environment variable holding the API key (none is sent otherwise)")
    gen.add_argument("--api", choices=("chat", "completions"), default="chat", help="endpoint flavour")
    gen.add_argument("--lm", help="local causal LM directory (or a name in the local HF cache) for --backend transformers")
    gen.add_argument("--device", help="device for the local LM (default: cuda if available)")
    gen.add_argument("--questions-file", help="questions (JSON list or one per line) with {}, {name} or {a_name}")
    gen.add_argument("--per-question", type=int, default=3, help="answers per question (default 3)")
    gen.add_argument("--dataset-hint", help='context added after the class name, e.g. "a type of pet"')
    gen.add_argument("--temperature", type=float, default=0.8, help="sampling temperature; 0 = greedy")
    gen.add_argument("--max-tokens", type=int, default=60, help="tokens per answer (default 60)")
    gen.add_argument("--seed", type=int, default=0, help="run seed; each request's seed derives from it")
    gen.add_argument("--system", default=DEFAULT_SYSTEM_PROMPT, help="system prompt for chat models")
    gen.add_argument("--require-name", action="store_true", help="drop answers that do not name the class")
    gen.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    gen.add_argument("--retries", type=int, default=2, help="retries per HTTP request (429, 5xx, connection)")
    fetch = sub.add_parser(
        "fetch",
        help="download CuPL's published prompt banks (checksummed)",
        description=(
            "Download CuPL's banks (github.com/sarahpratt/CuPL, pinned commit) into --out, one JSON per "
            "dataset, each checked against its recorded checksum. They load as data.prompts with no mapping "
            "(shipped mappings apply for catalogued datasets). CuPL has no EuroSAT bank: use generate."
        ),
    )
    fetch.add_argument("source", choices=("cupl",), help="whose banks to fetch")
    fetch.add_argument("--out", required=True, help="folder to write the banks to")
    fetch.add_argument("--datasets", nargs="+", help=f"only these (default all: {' '.join(CUPL_BANKS)})")
    fetch.add_argument("--base-url", default=CUPL_BASE_URL, help="where the repository's files are (a mirror)")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds per download")
    return parser


def prompts_main(argv: list[str] | None = None) -> int:
    """``aape prompts generate`` (a CuPL-format bank from an LLM) or ``fetch cupl`` (CuPL's published banks).

    Exit codes: 0 done; 1 the language model or a download failed (everything done so far is saved:
    rerun the same command to continue); 2 bad arguments or input files.
    """
    try:
        args = _prompts_parser().parse_args(argv)
    except SystemExit as stop:  # --help or a usage error: argparse has printed it
        return int(stop.code or 0)
    # lazy (start-up): as in _prompts_parser; and the catalog, for `aape prompts fetch` only
    from aape_lightning.data.classification.catalog import catalog_name
    from aape_lightning.prompts.backends import GenerationError
    from aape_lightning.prompts.fetch import DownloadError, fetch_banks
    from aape_lightning.prompts.generate import generate_bank, read_class_list
    from aape_lightning.prompts.questions import DEFAULT_QUESTIONS, read_questions_file

    try:
        if args.command == "fetch":
            # the catalog's names for folder names and aliases ("dtd" -> DescribableTextures): prompts holds none
            datasets = [catalog_name(d) for d in args.datasets] if args.datasets else None
            for name, path in fetch_banks(args.out, datasets, args.base_url, timeout=args.timeout).items():
                print(f"{name}: {path}")
            return 0
        classes = read_class_list(args.classes)
        questions = read_questions_file(args.questions_file) if args.questions_file else list(DEFAULT_QUESTIONS)
        bank = generate_bank(classes, args.out, _backend(args), questions, args.per_question, args.dataset_hint,
                             args.seed, args.require_name)
    except DownloadError as err:
        print(f"aape prompts: error: {err}", file=sys.stderr)
        return 1
    except GenerationError as err:
        print(f"aape prompts: error: {err}\nclasses done so far are saved in {args.out}; rerun the same "
              "command to continue", file=sys.stderr)
        return 1
    except (UserError, ValueError) as err:
        print(f"aape prompts: error: {err}", file=sys.stderr)
        return 2
    done = sum(1 for c in classes if bank.get(c))
    print(f"{args.out}: {done} of {len(classes)} classes, {sum(len(bank[c]) for c in classes)} prompts")
    return 0


def _backend(args: argparse.Namespace):
    """The language model ``aape prompts generate`` asks: an OpenAI-compatible endpoint or a local LM."""
    # lazy (start-up): as in _prompts_parser
    from aape_lightning.prompts.backends import OpenAIBackend, TransformersBackend

    kind = args.backend or ("openai" if args.url else "transformers" if args.lm else None)
    if kind is None:
        raise ValueError("choose a language model: --url URL --model NAME (OpenAI-compatible) or --lm PATH (local)")
    if kind == "openai":
        if not args.url or not args.model:
            raise ValueError("--backend openai needs --url (e.g. http://localhost:8000/v1) and --model")
        key = None
        if args.api_key_env:
            key = os.environ.get(args.api_key_env)
            if not key:
                raise ValueError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
        return OpenAIBackend(
            args.url, args.model, key, args.api, args.temperature, args.max_tokens, args.system,
            args.timeout, args.retries,
        )
    if not args.lm:
        raise ValueError("--backend transformers needs --lm (a local model directory)")
    return TransformersBackend(args.lm, args.temperature, args.max_tokens, args.system, args.device)


# -- aape data ------------------------------------------------------------------------------------
DATA_HELP = """\
    aape data prepare <name> --root <dir>   download + lay out (or print what to fetch)
    aape data check <name> --root <dir>     counts per split, missing and unreadable files
    aape data list [--root <dir>]           the known names and their folders

Names are CoOp's (DescribableTextures, OxfordFlowers, ImageNetA, ...) or folder names (dtd,
oxford_flowers, imagenet-adversarial, ...), or the offline demo datasets (DemoShapes, DemoSketch,
DemoSatellite: written by `aape demo build-data --root data/demo`). Exit status: 0 ready / OK, 1 something missing or
manual steps remain, 2 a usage or data error.
"""
DEMO_FOLDER = "demo"  # demo datasets live in <root>/demo/<Name> (DemoReader's default root: data/demo)


def _data_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aape data", description="Prepare a catalogued dataset in CoOp's layout, check one, list them.\n\n"
        + DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="download and lay out a dataset, or print what to fetch")
    prep.add_argument("name", help="dataset name (aape data list)")
    prep.add_argument("--root", default="data", help="the parent data folder (default: data)")
    prep.add_argument(
        "--download-dir", default=None, help="torchvision's download folder (default: <root>/_downloads/<folder>)"
    )
    prep.add_argument("--mode", choices=("symlink", "move"), default="symlink", help="link or move downloaded files")
    prep.add_argument("--seed", type=int, default=1, help="seed of a split file made because none exists")
    chk = sub.add_parser("check", help="report present, missing and unreadable files")
    chk.add_argument("name", help="dataset name (aape data list)")
    chk.add_argument("--root", default="data", help="the parent data folder (default: data)")
    chk.add_argument("--max-listed", type=int, default=20, help="list at most this many paths per kind")
    chk.add_argument("--no-images", action="store_true", help="only look for files; do not decode images")
    chk.add_argument("--workers", type=int, default=None, help="threads decoding images (default: up to 8)")
    lst = sub.add_parser("list", help="the known datasets")
    lst.add_argument("--root", default="data", help="mark the datasets present under this folder")
    return parser


def data_main(argv: list[str] | None = None) -> int:
    """Run one ``aape data`` command; returns the exit status."""
    args = _data_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # lazy (start-up): numpy, PIL, yaml and jsonargparse, which `aape --help` need not load
    from aape_lightning.data.classification.catalog import catalog_entry, known
    from aape_lightning.data.classification.check import check
    from aape_lightning.data.classification.prepare import prepare
    from aape_lightning.demo.datasets import DEMO_DATASETS

    try:
        if args.command == "list":
            print(f"{'name':20s} {'folder under ' + args.root:22s} present")
            for name, folder, present in known(args.root):
                print(f"{name:20s} {folder:22s} {'yes' if present else '-'}")
            for name in DEMO_DATASETS:
                folder = f"{DEMO_FOLDER}/{name}"
                print(f"{name:20s} {folder:22s} {'yes' if (Path(args.root) / folder).is_dir() else '-'}  (offline demo)")
            return 0
        if args.name in DEMO_DATASETS:
            return _demo_data(args)
        name = catalog_entry(args.name).name
        if args.command == "prepare":
            outcome = prepare(name, args.root, download_dir=args.download_dir, mode=args.mode, seed=args.seed)
            print("\n".join(outcome.lines))
            return 0 if outcome.ready else 1
        report = check(name, args.root, verify_images=not args.no_images, workers=args.workers)
        print("\n".join(report.lines(args.max_listed)))
        return 0 if report.ok else 1
    except DataError as err:
        print(f"aape data: error: {err}", file=sys.stderr)
        return 2


def _demo_data(args: argparse.Namespace) -> int:
    """A demo dataset is generated, never downloaded: check its folder (``<root>/demo/<Name>`` or ``<root>/<Name>``)."""
    # lazy (start-up): as in data_main
    from aape_lightning.data.classification.check import CheckReport
    from aape_lightning.data.classification.readers import CoOpSplitReader

    root = Path(args.root)
    folder = next((f for f in (root / args.name, root / DEMO_FOLDER / args.name) if f.is_dir()), None)
    write = f"`aape demo build-data --root {root / DEMO_FOLDER}` writes it (so does a fit with DemoReader)"
    if args.command == "prepare" or folder is None:
        print(f"{args.name}: " + (f"{folder} is present" if folder else f"not under {root} nor {root / DEMO_FOLDER}")
              + f"; {write}")
        return 0 if folder else 1
    report = CheckReport(args.name, folder)
    splits = CoOpSplitReader(str(folder)).read()
    paths = {s: [it.path for it in getattr(splits, s)] for s in ("train", "val", "test")}
    report.classes, report.counts = len(splits.classnames), {s: len(p) for s, p in paths.items()}
    report.missing = [p for ps in paths.values() for p in ps if not Path(p).is_file()]
    report.missing_in = {s: sum(not Path(p).is_file() for p in ps) for s, ps in paths.items()}
    if report.missing:
        report.notes.append(write)
    print("\n".join(report.lines(args.max_listed)))
    return 0 if report.ok else 1


# -- aape cache -----------------------------------------------------------------------------------
def cache_main(argv: list[str] | None = None) -> int:
    """``aape cache info`` lists what the feature store holds; ``aape cache clear`` empties it."""
    parser = argparse.ArgumentParser(prog="aape cache", description="The persistent image-feature store.")
    parser.add_argument("command", choices=("info", "clear"))
    parser.add_argument("--cache-dir", help="default: $AAPE_CACHE_DIR, else $XDG_CACHE_HOME/aape")
    args = parser.parse_args(argv)
    # lazy (start-up): numpy and PIL, which `aape --help` need not load
    from aape_lightning.data.feature_store import DEFAULT_MAX_GB, clear, info, store_root

    root = store_root(args.cache_dir)
    if args.command == "clear":
        print(f"cleared {root}: {clear(root) / 2**20:.1f} MiB freed")
        return 0
    rows = info(root)
    total = sum(r["bytes"] for r in rows)
    print(f"feature store {root}: {len(rows)} namespaces, {sum(r['rows'] for r in rows)} features, "
          f"{total / 2**20:.1f} MiB (bound {DEFAULT_MAX_GB:g} GiB by default: data.feature_store_gb)")
    for r in rows:
        print(f"  {r['namespace']}  {r['rows']:>8} features  {r['shards']:>4} shards  {r['bytes'] / 2**20:8.1f} MiB  "
              f"backbone {r.get('backbone_sha256', '?')[:12]}  {r.get('precision', '?')} {r.get('device', '?')}")
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
