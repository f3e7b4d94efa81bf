"""Where ALTA keeps what it can compute again but would rather not: the parser's tables,
JAX's compiled executables and exported model runs, under the user's cache directory
($XDG_CACHE_HOME/alta, by default ~/.cache/alta). ALTA_COMPILATION_CACHE=0 (or off) turns
every cache off; ALTA_COMPILATION_CACHE=DIR puts them under DIR instead. Everything here is
a cache: deleting the directory only makes the next run slower. Like JAX's own cache, it is
trusted (do not point it at a directory others can write). No JAX import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SETTING = "ALTA_COMPILATION_CACHE"


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
