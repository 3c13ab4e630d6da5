"""Counting across the worker's process pool for the metrics.

Celery's worker runs its tasks in forked child processes, and a counter incremented in a child
lives in the child's memory, out of reach of the exporter in the parent. Two ways across:
count in Redis, or let prometheus-client's multiprocess mode keep each process's values in a
memory-mapped file that the exporter adds up at scrape time. We use the files: an increment
stays a local write (no round trip added to the chain's hot path, where Redis already carries
the work), histograms keep their buckets, and a child that dies keeps its counts on disk.

A hazard remains: a child that replaces a dead one is forked while the parent's bulk indexer
thread may be updating a value under prometheus-client's lock, and would then wait on it; the
lock is held for microseconds per bulk request, and a stuck child is killed at the task time
limit and its batch redelivered.

The mode is chosen when prometheus-client is imported, so `prepare` must run before anything
imports `shared.metrics`. Each worker run gets a new directory, so counts never carry over
from an earlier run (counters start again at zero, as Prometheus expects after a restart).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name for it


PREFIX = "wirewatch-metrics-"


def prepare() -> Path:
    """Make this run's directory and point prometheus-client at it; the pool's children inherit
    it. The directory is removed when this process exits, and those of runs that were killed
    are removed now. A directory already set in the environment is used as it is."""
    if os.environ.get(DIRECTORY_VARIABLE):
        return Path(os.environ[DIRECTORY_VARIABLE])
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the worker chose multiprocess metrics")
    _remove_abandoned(Path(tempfile.gettempdir()))
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    os.environ[DIRECTORY_VARIABLE] = str(directory)
    atexit.register(_remove, directory, os.getpid())
    return directory


def _remove(directory: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked child exiting leaves the run's files alone
        shutil.rmtree(directory, ignore_errors=True)


def _remove_abandoned(parent: Path) -> None:
    # A worker killed with SIGKILL runs no exit handler; its directory names its process id.
    for directory in parent.glob(f"{PREFIX}*"):
        pid = directory.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
