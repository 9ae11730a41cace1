"""How long ``aape`` takes to start commands that train nothing, as ratios to ``python -c "import torch"``.

    python benchmarks/startup.py [--repeats 3] [--out results/startup.md]

Each command runs in a fresh process, interleaved with the torch baseline (same load on the machine);
the median of ``--repeats`` runs is reported. ``aape fit --help`` must import Lightning (it lists
Lightning's Trainer options), so its target is "not much more than Lightning itself": the
``import lightning.pytorch`` line shows that floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    'python -c "import lightning.pytorch"': [sys.executable, "-c", "import lightning.pytorch"],
    "aape --help": [sys.executable, "-m", "aape_lightning.cli", "--help"],
    "aape data list": [sys.executable, "-m", "aape_lightning.cli", "data", "list"],
    "aape fit --help": [sys.executable, "-m", "aape_lightning.cli", "fit", "--help"],
}


def seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/startup.md")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):  # interleaved: a load change hits every command alike
        for name, cmd in COMMANDS.items():
            times[name].append(seconds(cmd))
    base = statistics.median(times['python -c "import torch"'])
    lines = [f"# Start-up time of commands that train nothing (median of {args.repeats}, `python benchmarks/startup.py`)",
             "", "| command | seconds | / import torch |", "|---|---:|---:|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| `{name}` | {median:.2f} | {median / base:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
