"""Compiled checkpoints: one `.safetensors` file, weights plus a JSON manifest.

The manifest (in the safetensors header metadata, key "alta") says what the weights are:
format and version, program name, the program's source and its hash and the values of
its parameters (so the model runs with
no source file at hand, framing and output read-back included), vocabulary and framing, the
residual layout, halting, the model config and the compiler's report. Loading checks all of
it against the tensors and fails with a clear message on a corrupt, truncated or mismatched
file. The file is written to a temporary name and renamed, so a failed save leaves nothing
behind. No pickle anywhere.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from alta.config import ModelConfig
from alta.errors import AltaError
from alta.files import (
    find_source,
    manifest_params,
    read_tensors,
    source_fields,
    source_hash,
    write_tensors,
)
from alta.parameters import Parameters, parameters_from_flat

FORMAT = "alta-compiled-transformer"
FORMAT_VERSION = 2  # 2: the fault detector (attention sinks, fault flags and their sites)


def manifest_for(compiled, directory: Path | None = None) -> dict:
    """The checkpoint's manifest; `directory` is where it is written (source paths are also
    recorded relative to it)."""
    program = compiled.program
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "program": program.name,
        **source_fields(program, directory),
        "source": program.source.text,  # always: a checkpoint runs without its source file
        "vocab": list(program.vocab),
        "framing": [asdict(item) for item in program.framing],
        "halting": (program.source.line(program.halt.span.line).strip()
                    if program.halt is not None else None),
        "max_layers": program.max_layers,
        "layout": compiled.layout.to_json(),
        "config": compiled.config.to_json(),
        "report": asdict(compiled.report),
        "faults": [site.to_json() for site in compiled.faults],
    }


def save_checkpoint(compiled, path: str | Path) -> Path:
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in compiled.weights.items()}
    return write_tensors(path, tensors, manifest_for(compiled, Path(path).parent))


def _fail(path: Path, why: str) -> AltaError:
    return AltaError.at(f"{path}: not a usable ALTA checkpoint: {why}")


def read_checkpoint(path: str | Path) -> tuple[dict, Parameters]:
    """The manifest and the parameters, validated against each other."""
    path = Path(path)
    manifest, weights = read_tensors(path, missing="checkpoint", fail=lambda why: _fail(path, why))
    if manifest is None:
        raise _fail(path, "it has no ALTA manifest (is it a safetensors file from elsewhere?)")
    if manifest.get("format") != FORMAT:
        raise _fail(path, f"unknown format {manifest.get('format')!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"format version {manifest.get('format_version')!r}; this ALTA reads "
                          f"version {FORMAT_VERSION} (compile the program again)")
    for key in ("program", "source", "source_sha256", "layout", "config", "report", "faults"):
        if key not in manifest:
            raise _fail(path, f"its manifest lacks '{key}'")
    if source_hash(manifest["source"]) != manifest["source_sha256"]:
        raise _fail(path, "the embedded source does not match its hash")
    try:
        config = ModelConfig.from_json(manifest["config"])
    except (TypeError, KeyError) as exc:
        raise _fail(path, f"its model config is malformed ({exc})") from None
    return manifest, _parameters(path, config, weights)


def _parameters(path: Path, config: ModelConfig, tensors: dict[str, np.ndarray]) -> Parameters:
    try:
        parameters = parameters_from_flat(tensors, config)
    except ValueError as exc:
        raise _fail(path, f"its tensors do not match its config ({exc})") from None
    for name, value in tensors.items():
        if not np.all(np.isfinite(value)):
            raise _fail(path, f"tensor {name} holds NaN or infinite values")
    return parameters


def _checked_program(source: str, path: str, params: dict):
    """The checkpoint's program, checked once and then kept (alta.cache, `programs`): a warm
    run neither imports Lark and the checker nor checks again (a sizeable share of a
    one-input run). The key covers the source, its path, the parameters and ALTA's code."""
    import hashlib
    import json

    from alta.cache import code_digest, kept

    def check():
        from alta.checker import check_source

        return check_source(source, path, params)

    key = hashlib.blake2b(json.dumps([source, path, params, code_digest()],
                                     sort_keys=True, default=repr).encode(),
                          digest_size=16).hexdigest()
    return kept("programs", key, check)


def load_checkpoint(path: str | Path):
    """A checkpoint as a `CompiledProgram` (rules are not stored: `alta inspect` derives them
    from the embedded source when asked)."""
    from alta.compiler import CompiledProgram
    from alta.compiler.faults import FaultSite, plan_faults
    from alta.compiler.layout import ResidualLayout, build_layout
    from alta.compiler.weights import CompileReport, HeadScale

    path = Path(path)
    manifest, parameters = read_checkpoint(path)
    # The embedded source is the program; its file, where found, is where its task module is.
    found = find_source(manifest, path.parent)
    program = _checked_program(manifest["source"],
                               str(found) if found else manifest.get("source_path", str(path)),
                               manifest_params(manifest))
    layout = ResidualLayout.from_json(manifest["layout"])
    plan = plan_faults(program)
    if layout != build_layout(plan.program, appended=plan.synthetic):
        raise _fail(path, "its residual layout does not match its program")
    try:
        faults = tuple(FaultSite.from_json(site) for site in manifest["faults"])
    except (TypeError, KeyError) as exc:
        raise _fail(path, f"its fault sites are malformed ({exc})") from None
    if faults != plan.sites:
        raise _fail(path, "its fault sites do not match its program")
    if layout.width != ModelConfig.from_json(manifest["config"]).width:
        raise _fail(path, "its residual layout and model width disagree")
    report = dict(manifest["report"])
    report["head_scales"] = tuple(HeadScale(**s) for s in report["head_scales"])
    report["mlp_widths"] = tuple(report["mlp_widths"])
    report["warnings"] = tuple(report.get("warnings", ()))
    return CompiledProgram(program, layout, None, parameters, CompileReport(**report),
                           ModelConfig.from_json(manifest["config"]), faults)
