"""Installing: `make run` installs what running needs and nothing for the tests, with the pip
the Python came with; the dependency that old pips trip on is declared where they need it."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def planned(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run for a fresh virtual environment."""
    if shutil.which("make") is None:
        pytest.skip("no make here")
    result = subprocess.run(
        # --no-print-directory: under another make (as `make check` runs the tests) make would
        # add "Entering/Leaving directory" lines to the plan.
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_run_installs_what_running_needs_with_the_pip_that_came_with_python(tmp_path):
    commands = planned("run", tmp_path / "venv")
    installs = [c for c in commands if "pip install" in c]
    assert installs and all(re.search(r"pip install .*-e \.$", c) for c in installs), installs
    assert not any("[test]" in c or "--upgrade pip" in c for c in commands)
    assert commands[-1].endswith("wirewatch run")


def test_make_install_adds_the_test_tools(tmp_path):
    commands = planned("install", tmp_path / "venv")
    assert any("-e '.[test]'" in c for c in commands)
    assert not any("--upgrade pip" in c for c in commands)


def test_the_html_clean_extra_is_declared_before_the_packages_that_spell_it_two_ways():
    # justext (under trafilatura) asks for lxml[html_clean], readability-lxml for lxml[html-clean];
    # pip 23.0-23.2 crash when they meet both spellings before one of their own.
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    names = [re.split(r"[\[<>=]", dependency)[0] for dependency in dependencies]
    lxml = names.index("lxml")
    assert dependencies[lxml].startswith("lxml[html-clean]")
    assert lxml < names.index("trafilatura") and lxml < names.index("readability-lxml")
