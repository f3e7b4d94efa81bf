"""Where ALTA keeps what it can compute again but would rather not: the parser's tables,
checkpoints' checked programs, JAX's compiled executables and exported model runs, under
the user's cache directory ($XDG_CACHE_HOME/alta, by default ~/.cache/alta).
ALTA_COMPILATION_CACHE=0 (or off) turns every cache off; ALTA_COMPILATION_CACHE=DIR puts
them under DIR instead. Everything here is a cache: deleting the directory only makes the
next run slower. Like JAX's own cache, it is trusted (do not point it at a directory others
can write). No JAX import."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

SETTING = "ALTA_COMPILATION_CACHE"
T = TypeVar("T")


def cache_root(environ: Mapping[str, str] = os.environ) -> Path | None:
    """ALTA's cache directory, or None where the user switched caching off."""
    setting = environ.get(SETTING, "").strip()
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    if setting and setting.lower() not in ("1", "on", "true", "yes"):
        return Path(setting).expanduser()
    base = environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME") or Path.home()) / ".cache"
    return Path(base) / "alta"


def cache_dir(name: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """One cache's directory (made if need be), or None: caching is off, or the directory
    cannot be made (a read-only home: run without the cache)."""
    root = cache_root(environ)
    if root is None:
        return None
    try:
        (root / name).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / name


@functools.cache
def code_digest() -> str:
    """A digest of ALTA's own code and grammar (what a kept result computed by it depends
    on), once per process."""
    import hashlib
    import importlib.util

    digest = hashlib.blake2b(digest_size=16)
    for package in ("alta", "alta.compiler", "alta.grammar"):
        spec = importlib.util.find_spec(package)
        here = Path(spec.origin).parent if spec and spec.origin else None
        for path in sorted(here.iterdir()) if here else ():
            if path.suffix in (".py", ".lark"):
                digest.update(f"{package}/{path.name}\n".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def kept(name: str, key: str, build: Callable[[], T],
         environ: Mapping[str, str] = os.environ) -> T:
    """`build()`, kept in cache `name` under `key` (which must cover everything the result
    depends on): a later call loads it instead. Without the cache, or where the kept copy
    cannot be read, it builds (and keeps) it again; a cache that cannot be written only
    costs speed. Pickled: the cache is trusted, as above."""
    import pickle

    directory = cache_dir(name, environ)
    path = directory / f"{key}.pickle" if directory is not None else None
    if path is not None and path.is_file():
        with contextlib.suppress(Exception):  # damaged or from other code: build it again
            return pickle.loads(path.read_bytes())
    value = build()
    if path is not None:
        from alta.files import write_atomically

        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.suppress(OSError):
            write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))
    return value
