"""Shared fixtures: the bundled programs, checked (and compiled) once per session.

Helpers and constants the test modules share live in helpers.py; ROOT and PROGRAMS are also
importable from here, as before."""

import pytest
from helpers import PROGRAMS, ROOT, compiled_library, library_program

__all__ = ["PROGRAMS", "ROOT"]


@pytest.fixture(scope="session")
def program():
    """programs/NAME.alta, checked: `program(NAME)`."""
    return library_program


@pytest.fixture(scope="session")
def compiled():
    """programs/NAME.alta, compiled once per session (per worker): `compiled(NAME)`."""
    return compiled_library
