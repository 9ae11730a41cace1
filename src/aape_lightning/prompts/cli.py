"""``aape prompts generate``: write a CuPL-format prompt bank for a class list with an LLM;
``aape prompts fetch cupl``: download CuPL's published banks (checksummed).

Exit codes: 0 done; 1 the language model or a download failed (everything done so far is saved:
rerun the same command to continue); 2 bad arguments or input files.
"""

from __future__ import annotations

import argparse
import os
import sys

from aape_lightning.errors import UserError
from aape_lightning.prompts.backends import Backend, GenerationError, OpenAIBackend, TransformersBackend
from aape_lightning.prompts.fetch import CUPL_BANKS, CUPL_BASE_URL, DownloadError, fetch_banks
from aape_lightning.prompts.generate import generate_bank, read_class_list
from aape_lightning.prompts.questions import DEFAULT_QUESTIONS, DEFAULT_SYSTEM_PROMPT, read_questions_file


def _parser() -> argparse.ArgumentParser:
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


def _fetch(args: argparse.Namespace) -> int:
    try:
        done = fetch_banks(args.out, args.datasets, args.base_url, timeout=args.timeout)
    except DownloadError as err:
        print(f"aape prompts: error: {err}", file=sys.stderr)
        return 1
    except (UserError, ValueError) as err:
        print(f"aape prompts: error: {err}", file=sys.stderr)
        return 2
    for name, path in done.items():
        print(f"{name}: {path}")
    return 0


def _backend(args: argparse.Namespace) -> Backend:
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


def prompts_main(argv: list[str] | None = None) -> int:
    """Run ``aape prompts ...`` with ``argv`` (the words after ``prompts``); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help or a usage error: argparse has printed it
        return int(stop.code or 0)
    if args.command == "fetch":
        return _fetch(args)
    try:
        classes = read_class_list(args.classes)
        questions = read_questions_file(args.questions_file) if args.questions_file else list(DEFAULT_QUESTIONS)
        backend = _backend(args)
        bank = generate_bank(
            classes, args.out, backend, questions, args.per_question, args.dataset_hint, args.seed, args.require_name
        )
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
