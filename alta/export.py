"""Compiled models out of ALTA: a PyTorch directory, and ALTA's framing and decoding around
the PyTorch model.

`export_torch` writes DIR/model.safetensors (the checkpoint's weights and manifest, or with
a learned MLP in place of the compiled one), DIR/alta_pytorch.py (a copy of alta/pytorch.py:
a plain `torch.nn.Module` that needs no ALTA) and DIR/README.md. `run_torch` runs that module
on input strings, framed by alta.framing and read back through `ResidualLayout.decode`, into
the `CompiledRun` that `run_compiled` returns for the Flax model.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from alta.compiled import CompiledLayer, CompiledRun, check_length, read_run
from alta.compiler import CompiledProgram
from alta.errors import AltaError
from alta.files import write_atomically, write_tensors
from alta.framing import encode, encode_batch
from alta.tasks import in_file_examples

MODULE = Path(__file__).with_name("pytorch.py")
MODEL_FILE, MODULE_FILE, README_FILE = "model.safetensors", "alta_pytorch.py", "README.md"


def require_extra(*modules: str) -> None:
    """A clear error naming the 'export' extra where one of `modules` is not installed."""
    for module in modules:
        try:
            __import__(module)
        except ModuleNotFoundError:
            raise AltaError.at(f"exporting needs {module}, part of the 'export' extra: "
                               'pip install -e ".[export]"') from None


def _compiled(checkpoint) -> CompiledProgram:
    if isinstance(checkpoint, CompiledProgram):
        return checkpoint
    from alta.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)


def exported_model(checkpoint, mlp: str | Path | None = None, directory: Path | None = None
                   ) -> tuple[CompiledProgram, dict, dict[str, np.ndarray]]:
    """What an export holds: the compiled program, the manifest (the checkpoint's, its
    config and an "export" entry saying which MLP) and the tensors by name. With `mlp` (a
    file from `alta train`), the learned MLP takes the compiled one's place, as
    `alta run --mlp` runs it (alta.training). `directory`: where the manifest is written
    (source paths are also recorded relative to it)."""
    from alta.checkpoint import manifest_for

    compiled = _compiled(checkpoint)
    parameters, config, learned = compiled.parameters, compiled.config, None
    if mlp is not None:
        from alta.training import learned_config, learned_layers, load_mlp

        mlp_manifest, weights = load_mlp(mlp)
        parameters = replace(parameters, mlp=learned_layers(compiled, mlp_manifest, weights))
        config = learned_config(compiled, mlp_manifest)
        learned = {key: mlp_manifest[key] for key in ("source_sha256", "width", "hidden",
                                                      "activation", "training")
                   if key in mlp_manifest}
        learned["file"] = Path(mlp).name
    manifest = manifest_for(replace(compiled, parameters=parameters, config=config), directory)
    manifest["export"] = {"module": MODULE_FILE, "mlp": "compiled" if learned is None
                          else {"learned": learned}}
    tensors = {name: np.ascontiguousarray(value, dtype=np.float32)
               for name, value in parameters.flat().items()}
    return compiled, manifest, tensors


def export_torch(checkpoint, directory: str | Path, mlp: str | Path | None = None) -> Path:
    """Write the PyTorch export of a compiled checkpoint (a path, or a `CompiledProgram`)
    into `directory` (created if missing): model.safetensors, alta_pytorch.py, README.md.
    No pickle: weights and manifest are safetensors, the module is source code."""
    require_extra("torch")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise AltaError.at(f"cannot export into {directory}: it is a file, not a directory")
    compiled, manifest, tensors = exported_model(checkpoint, mlp, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AltaError.at(f"cannot create {directory}: {exc.strerror}") from None
    write_tensors(directory / MODEL_FILE, tensors, manifest)
    write_atomically(directory / MODULE_FILE, lambda tmp: shutil.copyfile(MODULE, tmp))
    text = _readme(compiled, manifest)
    write_atomically(directory / README_FILE,
                     lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return directory


def torch_model(checkpoint, mlp: str | Path | None = None, device=None, sparse: bool = True):
    """The PyTorch module (alta/pytorch.py) of a compiled checkpoint, built in memory."""
    require_extra("torch")
    from alta.pytorch import UniversalTransformer

    _, manifest, tensors = exported_model(checkpoint, mlp)
    model = UniversalTransformer(manifest["config"], tensors, sparse=sparse)
    model.manifest = manifest
    return model.to(device) if device is not None else model


def load_torch(directory: str | Path, device=None):
    """An exported directory (or its model.safetensors): the compiled program its manifest
    holds, and its PyTorch module."""
    require_extra("torch")
    from alta.checkpoint import load_checkpoint
    from alta.pytorch import UniversalTransformer

    path = Path(directory)
    path = path / MODEL_FILE if path.is_dir() else path
    compiled = load_checkpoint(path)
    try:
        model = UniversalTransformer.from_file(path, device=device)
    except ValueError as exc:
        raise AltaError.at(str(exc)) from None
    return compiled, model


def run_torch(compiled: CompiledProgram, texts, model=None, max_layers: int | None = None,
              undefined: str = "error") -> CompiledRun:
    """`run_compiled` with the PyTorch module (default: `torch_model(compiled)`): input
    strings framed as the program declares, outputs decoded through the residual layout,
    faults turned into the interpreter's errors (`undefined` as for `run_compiled`)."""
    program = compiled.program
    batch = encode_batch(program, texts)
    check_length(compiled, int(batch.lengths.max(initial=0)))
    model = model if model is not None else torch_model(compiled)
    limit = program.max_layers if max_layers is None else max_layers
    run = model(batch.tokens, batch.lengths, limit, undefined != "continue")
    return read_run(compiled, batch, run.residual.cpu().numpy(), run.layers.cpu().numpy(),
                    run.halted.cpu().numpy(), undefined)


def trace_torch(compiled: CompiledProgram, batch, max_layers: int | None = None, model=None):
    """`trace_compiled` with the PyTorch module (default: `torch_model(compiled)`): the
    initial state, then every layer's residuals of a framed batch, as numpy
    `CompiledLayer`s (so `alta.verify` compares them with the interpreter's trace)."""
    check_length(compiled, int(batch.lengths.max(initial=0)))
    model = model if model is not None else torch_model(compiled)
    for step in model.trace(batch.tokens, batch.lengths, max_layers):
        yield CompiledLayer(step.layer, step.active.cpu().numpy(),
                            None if step.attended is None else step.attended.cpu().numpy(),
                            step.state.cpu().numpy(), step.running.cpu().numpy())


def _readme(compiled: CompiledProgram, manifest: dict) -> str:
    """How to load and run the export, with one of the program's own examples framed."""
    program = compiled.program
    examples = in_file_examples(program)
    text, output = examples[0] if examples else ("", None)
    ids = encode(program, text)
    mlp = manifest["export"]["mlp"]
    which = "the compiled MLP" if mlp == "compiled" else \
        f"a learned MLP ({mlp['learned']['file']}, {mlp['learned']['activation']})"
    expected = f" (ALTA prints `{output}`)" if output is not None else ""
    return f"""# {program.name}: an ALTA program as a PyTorch model

Exported by `alta export --to torch`: the compiled Universal Transformer of
`{program.name}` with {which}, in plain PyTorch (torch, numpy and safetensors; no ALTA).

- `model.safetensors`: the weights, and the JSON manifest in the header metadata (key
  `alta`): model config, vocabulary, input framing, residual layout, the program's source.
- `alta_pytorch.py`: the module, a copy of ALTA's `alta/pytorch.py`.

```python
from alta_pytorch import UniversalTransformer

model = UniversalTransformer.from_file("model.safetensors")  # model.to("cuda") also works
run = model.run([{ids}])  # framed token ids of {text!r}{expected}
run.residual  # (batch, positions, {compiled.config.width}) final residual stream
run.layers, run.halted, run.faulted  # per input: layers run, stopped, fault flag set
```

Inputs are token ids after the program's framing (`vocab` and `framing` in the manifest);
`model(tokens, lengths)` runs a padded batch, `model.trace(tokens, lengths)` yields every
layer's residual. Where each variable sits in the residual is the manifest's `layout`. With
ALTA installed, `alta.export.run_torch` frames input strings and decodes the outputs.
"""
