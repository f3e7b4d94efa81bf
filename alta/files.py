"""The files ALTA writes and reads back: written whole or not at all (a temporary file,
then a rename); tensors with a JSON manifest (safetensors: compiled checkpoints, learned
MLPs, end-to-end models); and provenance, the recorded hash of the program source a file
was made from.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from alta.errors import AltaError

MANIFEST_KEY = "alta"  # the safetensors header metadata key that holds the JSON manifest


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """`write(tmp)` fills a temporary file beside `path` (same file system, so the final
    rename is atomic), which then replaces `path`. On any failure, or an interrupt, nothing
    is left behind but what `path` was; a killed process may leave a hidden `.NAME.*.tmp`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)  # the permissions a new file would get (mkstemp makes it 0600)
    os.umask(umask)
    try:
        write(tmp)
        # after writing: some writers (safetensors) replace the file and make it 0600 again
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data) -> Path:
    return write_atomically(Path(path), lambda tmp: Path(tmp).write_text(
        json.dumps(data, indent=1) + "\n", encoding="utf-8"))


def write_tensors(path: Path, tensors: dict, manifest: dict) -> Path:
    """A `.safetensors` file of `tensors` (name -> numpy array) with `manifest` as JSON in
    its header metadata, written atomically; a clear error if the directory does not exist."""
    from safetensors.numpy import save_file

    path = Path(path)
    if not path.parent.is_dir():
        raise AltaError.at(f"cannot write {path}: no such directory {path.parent}")
    metadata = {MANIFEST_KEY: json.dumps(manifest)}
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_tensors(path: Path, *, missing: str, fail: Callable[[str], AltaError],
                 corrupt: str = "the file is corrupt or truncated",
                 bad_manifest: str = "its manifest is not a JSON object"
                 ) -> tuple[dict | None, dict]:
    """The manifest (None if the file has none) and the tensors of a file `write_tensors`
    wrote. A path that is not a file fails as "no such MISSING: PATH"; a corrupt or truncated
    file, or a manifest that is not JSON, as `fail(why)` (`why` is `corrupt` or
    `bad_manifest` followed by the cause in parentheses)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise AltaError.at(f"no such {missing}: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise fail(f"{corrupt} ({exc})") from None
    if MANIFEST_KEY not in metadata:
        return None, tensors
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except json.JSONDecodeError as exc:
        raise fail(f"{bad_manifest} ({exc})") from None
    if not isinstance(manifest, dict):
        raise fail(f"{bad_manifest} (it is a {type(manifest).__name__})")
    return manifest, tensors


EMBEDDED_SOURCE_LIMIT = 1 << 20  # characters: larger sources are recorded by path and hash


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_fields(program, directory: Path | None = None) -> dict:
    """What a manifest records of the program it was made from: the source path as given,
    and (where the file exists) absolute and relative to `directory`, the manifest's own
    folder, so that it is found from any working directory and after the folder moves
    together with the program; the source's hash, and the source itself unless it is huge;
    the values of its parameters (`param`), which the source alone does not fix, if any."""
    path = Path(program.source.path)
    fields = {"source_path": str(path)}
    if program.params:  # (absent without parameters: such manifests are as they were)
        fields["params"] = dict(program.params)
    if path.is_file():
        fields["source_path_absolute"] = str(path.resolve())
        if directory is not None:
            fields["source_path_relative"] = os.path.relpath(path.resolve(),
                                                             Path(directory).resolve())
    fields["source_sha256"] = source_hash(program.source.text)
    if len(program.source.text) <= EMBEDDED_SOURCE_LIMIT:
        fields["source"] = program.source.text
    return fields


SOURCE_PATH_FIELDS = ("source_path", "source_path_absolute", "source_path_relative")


def find_source(manifest: dict, directory: Path) -> Path | None:
    """The program file a manifest in `directory` was made from: of the paths it records
    (relative to `directory`, absolute, as given), the first that holds the recorded source,
    else the first that exists (an edited program: provenance checks say so), else None."""
    recorded = [Path(directory) / manifest["source_path_relative"]
                if "source_path_relative" in manifest else None,
                manifest.get("source_path_absolute"), manifest.get("source_path")]
    existing = [Path(p) for p in recorded if p is not None and Path(p).is_file()]
    for path in existing:
        try:
            if source_hash(path.read_text(encoding="utf-8")) == manifest.get("source_sha256"):
                return path
        except (OSError, UnicodeDecodeError):
            continue
    return existing[0] if existing else None


def manifest_params(manifest: dict) -> dict:
    """The parameter values a manifest records (none before parameters existed)."""
    return dict(manifest.get("params") or {})


def show_params(params: dict) -> str:
    """Parameter values as `--set` takes them: `KINDS=1 MAX_LENGTH=100` ("none" if none)."""
    from alta.semantics import show

    return " ".join(f"{name}={show(value)}" for name, value in params.items()) or "none"


def check_provenance(manifest: dict, program, made: str, changed: str | None = None) -> None:
    """Fail unless `manifest` records the hash of `program`'s source (its `source_sha256`):
    the file was made from this very program. The error says "MADE from another program"
    or "... another version of NAME", or `changed` where given (the source was edited), or
    "MADE with parameters ..." where the parameters' values differ."""
    if manifest["source_sha256"] == source_hash(program.source.text):
        recorded, given = manifest_params(manifest), dict(program.params)
        if recorded != given:
            raise AltaError.at(f"{made} with parameters {show_params(recorded)}, not "
                               f"{show_params(given)}")
        return
    if manifest.get("program") != program.name:
        raise AltaError.at(f"{made} from another program, {manifest.get('program')!r}, not "
                           f"{program.name!r}")
    raise AltaError.at(changed or f"{made} from another version of {program.name} (source "
                                  "hash differs)")
