"""Shared fixtures: the bundled programs, checked once per session."""

from pathlib import Path

import pytest

from alta.checker import check_file

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"


@pytest.fixture(scope="session")
def program():
    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = check_file(PROGRAMS / f"{name}.alta")
        return cache[name]

    return load


def run_cli(*args, stdin: str | None = None):
    """`alta ARGS` in a fresh process, as a user runs it."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "alta.cli", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=300)
