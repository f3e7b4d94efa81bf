"""Writing files whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """`write(tmp)` fills a temporary file beside `path` (same file system, so the final
    rename is atomic), which then replaces `path`. On any failure, or an interrupt, nothing
    is left behind but what `path` was; a killed process may leave a hidden `.NAME.*.tmp`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)  # the permissions a new file would get (mkstemp makes it 0600)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data) -> Path:
    return write_atomically(Path(path), lambda tmp: Path(tmp).write_text(
        json.dumps(data, indent=1) + "\n", encoding="utf-8"))
