"""The local launcher of ``aape table``: runs one at a time in this process, or side by side in workers.

One run at a time (``--jobs 1``, no ``--devices``) runs in this process, as before. Otherwise each
of ``slots`` slots is a spawned one-worker ``ProcessPoolExecutor`` (the stdlib pool, one per slot
so that a slot keeps its device): ``--devices 0,1,2,3`` gives four slots, slot i pinned to device
``devices[i % 4]`` through ``CUDA_VISIBLE_DEVICES``, set in the worker before it touches CUDA, so
each run sees exactly one GPU (Lightning's ``devices: auto`` then takes that one). More runs per
device only when asked: ``--jobs 8 --devices 0,1,2,3`` gives two per device.

Each worker leads its own process group (it and its DataLoader workers): a Ctrl-C on the terminal
reaches only the runner, which then ends every group itself (SIGTERM, then SIGKILL after
``grace_s``), so no worker outlives an interrupted table.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from aape_lightning.console import configure_output
from aape_lightning.experiments.launcher import Launcher


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _init_worker(device: str | None) -> None:
    """A spawned worker: its own process group, pinned to ``device``, logging like ``aape`` itself."""
    os.setpgrp()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    configure_output()


class LocalPool(Launcher):
    """Runs in this process (one slot, no devices) or in one spawned worker per slot."""

    def __init__(self, jobs: int | None = None, devices: list[str] | None = None, threads: int | None = None,
                 grace_s: float = 3.0) -> None:  # fmt: skip
        devices = list(devices or [])
        self.slots = jobs or max(len(devices), 1)
        self.devices: list[str | None] = [devices[i % len(devices)] for i in range(self.slots)] if devices else [None] * self.slots
        self.in_process = self.slots == 1 and not devices
        self.threads = threads or (None if self.in_process else max(available_cpus() // self.slots, 1))
        self.grace_s = grace_s
        self._pools: list[ProcessPoolExecutor | None] = [None] * self.slots
        self._slot_of: dict[Future, int] = {}

    def submit(self, run_dir: Path, key: str, fn: Callable[..., Any], *args: Any) -> Future:
        if self.in_process:
            future: Future = Future()
            try:
                future.set_result(fn(*args))
            except Exception as err:  # noqa: BLE001 - the run's error, handed back by result()
                future.set_exception(err)
            return future
        slot = next(s for s in range(self.slots) if s not in self._slot_of.values())
        if self._pools[slot] is None:
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # no forked torch / CUDA state in the workers
            self._pools[slot] = ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker,
                                                    initargs=(self.devices[slot],))  # fmt: skip
        future = self._pools[slot].submit(fn, *args)
        self._slot_of[future] = slot
        return future

    def wait(self, handles: list[Future]) -> list[Future]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        for future in done:
            slot = self._slot_of.pop(future, None)
            if slot is not None and isinstance(future.exception(), BrokenProcessPool):
                self._pools[slot].shutdown(wait=False)  # its worker died: the next run there gets a fresh one
                self._pools[slot] = None
        return list(done)

    def result(self, handle: Future) -> Any:
        return handle.result()

    def stop(self) -> None:
        processes = [p for pool in self._pools if pool is not None for p in (pool._processes or {}).values()]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for process in processes:
                if process.is_alive():
                    try:
                        os.killpg(process.pid, sig)  # the worker and its DataLoader workers
                    except (ProcessLookupError, PermissionError):
                        pass
            deadline = time.monotonic() + self.grace_s
            while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
                time.sleep(0.05)
        for process in processes:
            process.join(timeout=1)
        self.close()

    def close(self) -> None:
        for pool in self._pools:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._pools = [None] * self.slots
        self._slot_of.clear()
