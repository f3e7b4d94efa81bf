"""Shared fixtures: the bundled programs, checked (and compiled) once per session.

Helpers and constants the test modules share live in helpers.py; ROOT and PROGRAMS are also
importable from here, as before."""

import os
import tempfile

import pytest
from helpers import PROGRAMS, ROOT, compiled_library, library_program

__all__ = ["PROGRAMS", "ROOT"]

# ALTA's caches (parser tables, JAX executables, exported runs: alta/cache.py) go to a
# directory of this test process, never the user's; `alta` subprocesses inherit it.
_CACHE = tempfile.TemporaryDirectory(prefix="alta-test-cache-")
os.environ["ALTA_COMPILATION_CACHE"] = _CACHE.name


@pytest.fixture(scope="session")
def program():
    """programs/NAME.alta, checked: `program(NAME)`."""
    return library_program


@pytest.fixture(scope="session")
def compiled():
    """programs/NAME.alta, compiled once per session (per worker): `compiled(NAME)`."""
    return compiled_library
