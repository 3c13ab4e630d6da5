"""Time and memory of reading hostile dropped files: pages of repeated unclosed tags, binary
noise, a long .jsonl. Each input is read in a child process of its own, so the peak memory
printed is that read's alone.

    python tests/benchmarks/bench_hostile.py [--scale 1.0]

Prints, per input: its size, the seconds the read took, how the read ended (articles, or the
reason it was refused) and how far the child's peak memory rose above what it had after
importing the readers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# The peak is read from /proc (VmHWM): ru_maxrss carries the parent's peak across exec.
CHILD = """
import json, sys, time
from pathlib import Path
from shared.formats.mapping import UnreadableFile
from shared.formats.readers import read_file_report
def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
before = peak_kb()
started = time.perf_counter()
try:
    outcome = f"{len(read_file_report(Path(sys.argv[1])).articles)} articles"
except UnreadableFile as error:
    outcome = f"refused: {str(error)[:70]}"
seconds = time.perf_counter() - started
grown = (peak_kb() - before) / 1024
print(json.dumps({"seconds": seconds, "outcome": outcome, "grown_mb": grown}))
"""


def inputs(scale: float) -> dict[str, bytes]:
    tags = int(700_000 * scale)
    page = {
        f"repeated-{name}.html": (
            "<html><head>" + unit * (tags // len(unit)) + "</head><body><p>x</p></body></html>"
        ).encode()
        for name, unit in (
            ("og-title", '<meta property="og:title" '),
            ("date", '<meta name="date" '),
            ("canonical", '<link rel="canonical" '),
            ("title", "<title>"),
        )
    }
    noise = bytes((n * 7919 + (n >> 5)) % 254 + 1 for n in range(int(1_000_000 * scale)))
    line = json.dumps({"title": "Line", "text": "x" * 2000}) + "\n"
    return {
        **page,
        "noise.txt": noise,
        "noise.rss": noise,
        "long.jsonl": (line * int(20_000 * scale)).encode(),
        "big.txt": b"Headline\n" + b"word " * int(12_000_000 * scale),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every input's size")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'input':<26}{'MB':>8}{'seconds':>10}{'peak +MB':>10}  outcome")
        for name, data in inputs(args.scale).items():
            path = Path(folder) / name
            path.write_bytes(data)
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)], cwd=root, capture_output=True, text=True, check=True
            )
            row = json.loads(result.stdout)
            size = len(data) / 2**20
            print(f"{name:<26}{size:>8.1f}{row['seconds']:>10.3f}{row['grown_mb']:>10.0f}  {row['outcome']}")
            path.unlink()


if __name__ == "__main__":
    main()
