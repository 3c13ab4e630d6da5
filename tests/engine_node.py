"""The real search engine of the test session: one OpenSearch node (Lucene analysis, query
DSL, aliases, templates, point in time) built from `tests/engine/` with Maven and run with
Java. The Elasticsearch store's tests, the store contract and the query parity suite run on it.

Built once (`mvn -q package dependency:copy-dependencies`, with the Maven repository cached
in ~/.m2 as usual) and rebuilt when its sources change. On a laptop without Java or Maven the
tests that need it are skipped; under `CI` they fail instead, so CI can never skip them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).parent / "engine"
TARGET = PROJECT / "target"
JAR = TARGET / "test-engine-1.jar"
START_TIMEOUT_SECONDS = 120
HEAP = "-Xmx512m"


@dataclass
class EngineNode:
    """A running node: its URL, its process, and how long it took to answer."""

    url: str
    process: subprocess.Popen[bytes]
    start_seconds: float
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class EngineUnavailable(RuntimeError):
    """Java or Maven is missing, the build failed, or the node never answered."""


def _sources_newer_than_build() -> bool:
    if not JAR.exists() or not (TARGET / "dependency").is_dir():
        return True
    built = JAR.stat().st_mtime
    sources = [PROJECT / "pom.xml", *PROJECT.joinpath("src").rglob("*.java")]
    return any(path.stat().st_mtime > built for path in sources)


def build() -> None:
    """Build the node's jar and copy its dependencies beside it, when the sources changed."""
    if not _sources_newer_than_build():
        return
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(f"{tool} is not installed; the real engine cannot be built")
    # copy-dependencies never removes a jar the pom no longer brings; start from an empty folder.
    shutil.rmtree(TARGET / "dependency", ignore_errors=True)
    done = subprocess.run(
        ["mvn", "-q", "-B", "package", "dependency:copy-dependencies"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise EngineUnavailable(f"building the engine failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start(home: Path) -> EngineNode:
    """Build if needed, start the node on a free port with its data under `home`, and wait until
    `GET /` answers."""
    build()
    port = _free_port()
    log = home / "node.log"
    classpath = os.pathsep.join([str(JAR), str(TARGET / "dependency" / "*")])
    began = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["java", HEAP, "-cp", classpath, "wirewatch.engine.TestNode", str(port), str(home / "node")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = began + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(f"the node exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if _answers(url):
            return EngineNode(url, process, time.monotonic() - began, log)
        time.sleep(0.2)
    process.kill()
    raise EngineUnavailable(f"the node did not answer within {START_TIMEOUT_SECONDS}s:\n{log.read_text()[-3000:]}")


def unavailable(reason: str) -> None:
    """Skip on a laptop; fail under CI, where the real engine must run."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the real search engine: {reason}", pytrace=False)
    pytest.skip(f"no real search engine: {reason}")
