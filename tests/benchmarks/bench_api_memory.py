"""The API's resident memory once it is serving: starts `wirewatch api` on a free port, waits
for it to answer /health, scrapes /metrics once, and prints VmRSS (Linux).

    python tests/benchmarks/bench_api_memory.py [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]


def resident_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found, "no VmRSS (not Linux?)"
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        env = {name: value for name, value in os.environ.items() if not name.startswith("WIREWATCH_")}
        env.update(
            WIREWATCH_REDIS_URL=args.redis,
            WIREWATCH_DATA_DIR=data,
            WIREWATCH_API_BIND="127.0.0.1:0",
            PYTHONPATH=str(ROOT),
        )
        log = Path(data) / "api.log"
        with open(log, "wb") as output:
            api = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "api"], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
                if time.monotonic() > deadline or api.poll() is not None:
                    print(log.read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.1)
            url = found.group(1)
            for path in ("/health", "/metrics"):
                urllib.request.urlopen(url + path, timeout=10).close()
            print(f"wirewatch api after start, /health and /metrics: VmRSS {resident_kb(api.pid) / 1024:.1f} MB")
        finally:
            api.terminate()
            api.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
