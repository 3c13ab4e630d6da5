"""Service processes started by tests and benchmarks, each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterable


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_groups(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """Ask each running process group to stop (SIGTERM: a service finishes its work in hand),
    and kill those still there after `timeout` seconds (a worker's pool processes too)."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
