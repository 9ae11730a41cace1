"""The live processes below a process, read from /proc (Linux; no psutil): what an interrupt must end."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _state_and_parent(stat: Path) -> tuple[str, int] | None:
    try:
        fields = stat.read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every live (not zombie) process below ``pid``; empty where /proc is not there."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        found = _state_and_parent(stat)
        if found and found[0] != "Z":
            parent[int(stat.parent.name)] = found[1]
    tree, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - tree
        tree |= frontier
    return tree


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended)."""
    if not Path("/proc/self/stat").exists():  # no /proc: ask the kernel, zombies included
        return {p for p in pids if _signalable(p)}
    return {p for p in pids if (found := _state_and_parent(Path(f"/proc/{p}/stat"))) and found[0] != "Z"}


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_all(pids: set[int]) -> None:
    """SIGKILL each of ``pids`` still there."""
    for pid in alive(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
