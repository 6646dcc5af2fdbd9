"""Child processes the project's tools start (Azurite, the dev host, the benchmark's bare floor):
started, watched until a line of their output says they are ready, and stopped.

Their output is drained on a thread for as long as they run, so a child never blocks on a full
pipe, and kept, so a child that fails to start can say why.
"""
from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass
class Child:
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(command: Sequence[str], ready: Callable[[str], bool], *, what: str, timeout: float = 60.0, **popen) -> Child:
    """Start `command` and return once `ready` has been true of a line of its output (stdout and
    stderr together). A child that exits first, or says nothing ready within `timeout`, is killed
    and a RuntimeError shows its last lines."""
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    child = Child(process)
    said_ready = threading.Event()
    finished = threading.Event()

    def drain() -> None:
        for line in process.stdout:
            child.output.append(line.rstrip())
            if not said_ready.is_set() and ready(line):
                said_ready.set()
        finished.set()

    threading.Thread(target=drain, daemon=True, name=f"{what}-output").start()
    deadline = time.monotonic() + timeout
    while not said_ready.wait(0.05):
        if finished.is_set() or time.monotonic() > deadline:
            break
    if not said_ready.is_set():
        child.stop(timeout=5)
        raise RuntimeError(f"{what} did not start:\n" + "\n".join(child.output[-30:]))
    return child
