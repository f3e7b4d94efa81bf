"""Shared fixtures: the bundled programs, checked (and compiled) once per session.

Helpers and constants the test modules share live in helpers.py; ROOT and PROGRAMS are also
importable from here, as before."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import PROGRAMS, ROOT, compiled_library, library_program, once_per_run
from packaging.version import Version

__all__ = ["PROGRAMS", "ROOT"]

# ALTA's caches (parser tables, JAX executables, exported runs: alta/cache.py) go to a
# directory of this test run, never the user's. The xdist workers of one run share it (the
# same models compile in each worker: one compiles, the others read), and `alta`
# subprocesses inherit it; the run's controlling process removes it at the end.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
_CACHE = Path(tempfile.gettempdir()) / f"alta-test-cache-{_RUN}"
os.environ["ALTA_COMPILATION_CACHE"] = str(_CACHE)

# XLA compiles quickly rather than well: nearly every model here is compiled for a few
# calls (generated programs, one-off shapes), so compilation is most of the suite's time.
# LLVM at -O0 without XLA's fusion emitters compiles a small model ~6x faster, for runs
# that are up to a few times slower; the numbers computed are the same IEEE float32
# operations (XLA's CPU back end does no fast-math either way). The LLVM module is compiled
# whole, not split into parts compiled on threads (XLA's default): the same code, and ~40%
# less XLA time for a generated program's small model here, where the workers already
# occupy the cores (no slower for the larger library models). Users, the benchmarks and
# ALTA_TEST_XLA_DEFAULTS=1 get XLA's defaults. Before JAX starts, which reads it once;
# `alta` subprocesses inherit it.
QUICK_XLA_FLAGS = ("--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
                   "--xla_cpu_parallel_codegen_split_count=1")
if not os.environ.get("ALTA_TEST_XLA_DEFAULTS"):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {QUICK_XLA_FLAGS}".strip()


def pytest_configure(config):
    # xdist's marker, named for runs without xdist too (`-p no:xdist`, `-n 0`)
    config.addinivalue_line("markers", "xdist_group(name): run in one xdist worker")
    if config.getoption("dist", None) == "loadgroup" and \
            Version(pytest.__version__) >= Version("9.2.dev0"):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} ignores pytest-xdist's groups (pytest-xdist issue "
            "1386; pyproject.toml asks for pytest below 9.2): reinstall with "
            "pip install -e '.[dev]'")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Tests that share a module-scoped fixture (not an autouse setting) run in one xdist
    worker (`--dist loadgroup`, pyproject.toml), so the fixture is built once, not once in
    each worker; the other tests are shared out one at a time. First among the hooks: xdist's
    own reads the marks to put the group in each test's id, and a mark added after it is
    ignored."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        if any(d.scope == "module" and not getattr(d, "_autouse", False)
               for defs in definitions.name2fixturedefs.values() for d in defs[-1:]):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def program():
    """programs/NAME.alta, checked: `program(NAME)`."""
    return library_program


@pytest.fixture(scope="session")
def compiled():
    """programs/NAME.alta, compiled once per session (per worker): `compiled(NAME)`."""
    return compiled_library


@pytest.fixture(autouse=True)
def _release_one_off_models(request):
    """After a test that builds models no other test uses (generated programs, unrolled
    exports), drop their compiled executables and arrays: a worker runs hundreds of them,
    and two workers' accumulated memory can exhaust a small CI machine.

    A generated program's executables are not written to JAX's persistent cache either:
    no test, worker or later run compiles that model again. The cache's work (a key, a
    lookup, and serialising and writing each executable to a file) was about a quarter of
    test_verify.py's XLA time, most of it the writes."""
    name = request.node.name
    generated = "random_programs" in name or "random_faulty_programs" in name
    if generated:
        import jax

        from alta.compiled import use_compilation_cache

        use_compilation_cache()  # the run's own settings first (they are made once)
        setting = "jax_persistent_cache_min_compile_time_secs"
        before = getattr(jax.config, setting)
        jax.config.update(setting, float("inf"))  # nothing compiles for that long
    yield
    if generated:
        jax.config.update(setting, before)
    if "random" in name or request.module.__name__ in (
            "test_export_lens", "test_export_torch"):
        import sys

        if "jax" in sys.modules:
            sys.modules["jax"].clear_caches()
        _collect_if_large()


# A worker's resident memory above which a one-off test's garbage cycles are collected at
# once. A full collection of a worker's heap (JAX, torch and TransformerLens loaded) takes
# about half a second; after every such test it was about 8 % of the suite's time, for memory
# that Python's own collections free a little later anyway.
_COLLECT_ABOVE = 2 << 30


def _collect_if_large() -> None:
    import gc

    try:
        with open("/proc/self/statm") as statm:  # Linux: sizes in pages; the second is RSS
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        resident = None  # elsewhere: collect every time
    if resident is None or resident > _COLLECT_ABOVE:
        gc.collect()


@pytest.fixture(scope="session")
def parity_mlp():
    """An MLP trained on traces of parity inputs of up to 8 bits (`alta trace --vectors`,
    `alta train`), once per test run: (program, traces directory, MLP file, loss curve)."""
    return once_per_run("parity-mlp", _train_parity_mlp)


def _train_parity_mlp(directory: Path):
    from alta.tasks import find_task
    from alta.traces import TraceSettings, write_dataset
    from alta.training import TrainSettings, load_vectors, save_mlp, train_mlp

    program = library_program("parity")
    write_dataset(program, find_task(program), TraceSettings(
        samples=200, lengths=(0, 8), vectors=True, undefined="noise"), directory)
    manifest, x, y = load_vectors(directory)
    # Input noise teaches it to pull slightly-off states back, which long inputs need.
    settings = TrainSettings(hidden=(64, 64), steps=1500, seed=1, input_noise=0.1)
    model, curve = train_mlp(x, y, settings)
    path = save_mlp(model, settings, manifest, curve, 1.0, directory / "mlp.safetensors")
    return program, directory, path, curve
