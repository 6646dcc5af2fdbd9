"""Starts a throwaway Azurite (npm package `azurite`, pinned in package.json) for local runs and tests.

Always on loopback, in memory, telemetry off. Port 0 lets Azurite pick free ports; the
real ones are read from what it prints, so parallel runs never collide.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass

from ..config import PROJECT_ROOT, azurite_connection_string
from . import children
from .children import Child

# Longer than our clients keep an idle connection (aiohttp: 15 s), as Azure's minutes are. At Node's
# default of 5 s, Azurite could close a connection just as a busy client reused it, failing a POST
# (job put, $batch) that the SDKs do not retry.
KEEP_ALIVE_SECONDS = 120

_LISTENING = re.compile(r"Azurite (Queue|Table) service is successfully listening at http://[^:]+:(\d+)")


@dataclass
class Azurite:
    host: str
    queue_port: int
    table_port: int
    child: Child

    @property
    def process(self) -> subprocess.Popen:
        return self.child.process

    @property
    def output(self) -> list[str]:
        return self.child.output

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.host, self.queue_port, self.table_port)

    def stop(self) -> None:
        self.child.stop(timeout=10)

    def __enter__(self) -> "Azurite":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(host: str = "127.0.0.1", queue_port: int = 0, table_port: int = 0, timeout: float = 60.0,
          persist_to: str | None = None) -> Azurite:
    """Azurite in memory, or keeping its data in `persist_to` so a stop and restart (on the same
    ports) looks like a storage outage that ends, as fault-injection tests need."""
    executable = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if not executable.exists():
        raise RuntimeError(f"Azurite is not installed ({executable} is missing): run `npm ci` in {PROJECT_ROOT}")
    storage = ["--location", persist_to] if persist_to else ["--inMemoryPersistence"]
    command = [
        str(executable), *storage, "--disableTelemetry", "--silent", "--skipApiVersionCheck",
        "--blobHost", host, "--queueHost", host, "--tableHost", host,
        "--blobPort", "0", "--queuePort", str(queue_port), "--tablePort", str(table_port),
        *(f"--{service}KeepAliveTimeout={KEEP_ALIVE_SECONDS}" for service in ("blob", "queue", "table")),
    ]
    ports: dict[str, int] = {}

    def listening_on_both(line: str) -> bool:
        if match := _LISTENING.search(line):
            ports[match.group(1)] = int(match.group(2))
        return len(ports) == 2

    child = children.start(command, listening_on_both, what="Azurite", timeout=timeout,
                           cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL)
    return Azurite(host, ports["Queue"], ports["Table"], child)
