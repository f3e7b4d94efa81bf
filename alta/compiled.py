"""The compiled back end: run a compiled program's Universal Transformer on input strings.

`run_compiled` is the fast path (the whole run in one jitted `while_loop`);
`trace_compiled` steps layer by layer and yields every residual, for verification. Both
advance with the model's one masked layer (`UniversalTransformer.step`), frame inputs and
read outputs back exactly as the interpreter does (alta.framing), and turn the fault
detector's flags into the interpreter's errors.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alta.batching import DEFAULT as DEFAULT_BATCHES
from alta.batching import BatchSettings, plan_batches, position_bucket, row_bucket, windows
from alta.cache import cache_dir, code_digest
from alta.compiler import CompiledProgram
from alta.compiler.structure import model_heads
from alta.devices import device_count, padded_rows, per_device, put_batch, replicate, to_host
from alta.errors import AltaError, AltaRuntimeError, undefined_read
from alta.framing import Batch, decode_outputs, encode, encode_batch, framed_batch


@dataclass(frozen=True)
class Fault:
    """Where a sequence's MLP read an undefined head: the first site in evaluation order
    flagged in that layer, at its first position."""

    sequence: int
    layer: int
    site: int  # index into CompiledProgram.faults
    position: int


@dataclass(frozen=True)
class CompiledRun:
    batch: Batch
    residual: np.ndarray  # (batch, positions, D) final
    layers: np.ndarray
    halted: np.ndarray
    outputs: tuple[str, ...]
    faults: tuple[Fault, ...] = ()  # per faulted sequence, in batch order

    @property
    def not_halted(self) -> list[int]:
        faulted = {f.sequence for f in self.faults}
        return [int(b) for b in np.flatnonzero(~self.halted) if int(b) not in faulted]

    @property
    def first_fault(self) -> Fault | None:
        """The fault the interpreter reports for this batch: the earliest layer, then the
        first site in evaluation order, then the first input and position."""
        return min(self.faults, key=lambda f: (f.layer, f.site, f.sequence, f.position),
                   default=None)


@dataclass(frozen=True)
class CompiledLayer:
    layer: int  # 0: the initial state (embeddings)
    active: np.ndarray  # (batch,) sequences this layer ran on
    after_attention: np.ndarray | None  # (batch, positions, D); None for layer 0
    after_mlp: np.ndarray
    running: np.ndarray  # (batch,) still running after this layer's halting check


CACHE_BYTES = 2 << 30  # JAX evicts its least recently used executables past this size
CACHE_MIN_SECONDS = 0.0  # even small executables: a file read beats a compilation


def use_compilation_cache(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Point JAX's persistent compilation cache at ALTA's (alta.cache: `jax` in the user's
    cache directory; before the first compilation, as JAX reads the setting once), so a
    second run of a model loads its executables instead of compiling them. Returns the
    directory (None: off)."""
    import jax

    path = cache_dir("jax", environ)
    if path is None or jax.config.jax_compilation_cache_dir is not None:
        return path  # off, or already set (by this function, or by the user's JAX setup)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", CACHE_BYTES)
    return path


# Padded batches of at most this many positions (rows x positions) run the dense path: XLA
# compiles it several times faster (SCAN, one input: 1.1 s against 9 s of CPU), and at this
# size it runs in a few tens of milliseconds all the same; larger batches run the structured
# paths, which are several times faster per input.
DENSE_POSITIONS = 256


def structured_for(shape: tuple[int, int]) -> bool:
    """Whether a padded (rows, positions) batch runs the structured paths (`load_model`)."""
    return shape[0] * shape[1] > DENSE_POSITIONS


def load_model(compiled: CompiledProgram, structured: bool = True):
    """The compiled program's Universal Transformer. `structured` runs the paths of its
    execution plan (compiler/structure.py: the same numbers as the dense path, to float32
    rounding): attention reads each head's blocks as slices, sparse MLP layers run as a few
    dense blocks, and the halting readout computes only the units that reach its output.
    Its compilations use JAX's persistent cache (`use_compilation_cache`)."""
    use_compilation_cache()
    return build_model(compiled, structured)


def build_model(compiled: CompiledProgram, structured: bool = True):
    """`load_model` without turning on JAX's persistent cache."""
    from flax import nnx

    from alta.model import UniversalTransformer

    model = UniversalTransformer(compiled.config, compiled.parameters,
                                 compiled.execution if structured else None)
    nnx.update(model, replicate(nnx.state(model)))
    return model


class ModelRunner:
    """The compiled model's whole run (`UniversalTransformer.__call__`), compiled once per
    padded shape, with the path that suits the shape (`structured_for`), as a function of
    the weights (they are arguments, not constants of the program). Each shape's executable
    is kept in ALTA's cache (alta.cache, `runs`): a later process loads it and runs it, with
    no Flax, no tracing, no lowering and no compilation. Where it is missing, damaged or does
    not run, the model is traced and compiled again (and the executable kept again).

    XLA can serialise only an executable it compiled itself: one that JAX's persistent
    cache served fails when loaded again (on CPU: a fusion function not found). So a runner
    that keeps its runs does not turn that cache on (its kept executables serve instead), and
    keeps an executable only after a compilation the cache did not serve (the cache may be
    on for other work in the process). Without kept runs (`keep=False`, or no cache
    directory) it uses JAX's persistent cache. The key covers the weights (the execution plan
    follows their zeros), the model's code, the JAX version, the device count and the host's
    processor. Holds what it loaded for this process only."""

    def __init__(self, compiled: CompiledProgram, environ: Mapping[str, str] = os.environ,
                 keep: bool = True):
        """`keep`: keep executables in ALTA's cache and load them (else JAX's cache)."""
        self.compiled = compiled
        self.directory = cache_dir("runs", environ) if keep else None
        if self.directory is None:  # kept runs need compilations the cache did not serve
            use_compilation_cache(environ)
        self._models: dict[bool, object] = {}
        self._calls: dict = {}
        self._weights = None
        self._key: str | None = None

    def model(self, structured: bool = True):
        """The Flax model of one path (built on first use)."""
        if structured not in self._models:
            load = load_model if self.directory is None else build_model
            self._models[structured] = load(self.compiled, structured)
        return self._models[structured]

    def __call__(self, tokens: np.ndarray, lengths: np.ndarray, limit: int, stop: bool):
        key = (tokens.shape, bool(stop))
        args = (self._device_weights(), tokens, lengths, np.int32(limit))
        if key in self._calls:
            return self._calls[key](*args)
        path = self._path(tokens.shape, bool(stop))
        kept = _load_executable(path, args) if path is not None else None
        if kept is not None:
            self._calls[key], result = kept
            return result
        self._calls[key] = self._compile(bool(stop), structured_for(tokens.shape), args, path)
        return self._calls[key](*args)

    def _device_weights(self) -> dict:
        """The weights, copied to every device once (not on every call)."""
        if self._weights is None:
            self._weights = replicate(self.compiled.weights)
        return self._weights

    def _path(self, shape: tuple[int, int], stop: bool) -> Path | None:
        """Where a shape's executable is kept; None without a cache."""
        if self.directory is None:
            return None
        if self._key is None:  # hashes every weight: once per runner, not per shape
            self._key = _run_key(self.compiled, self.compiled.weights)
        return self.directory / (f"{self._key}-{'sd'[not structured_for(shape)]}"
                                 f"{shape[0]}x{shape[1]}-{int(stop)}.xla-executable")

    def _compile(self, stop: bool, structured: bool, args: tuple, path: Path | None):
        """The run traced as a function of the weights (a dict by checkpoint name) and
        compiled for `args`; its executable kept at `path` (see the class)."""
        import jax
        from flax import nnx

        graph, params, rest = nnx.split(self.model(structured), nnx.Param, ...)
        paths, tree = jax.tree_util.tree_flatten_with_path(params)
        names = [".".join(str(getattr(k, "key", getattr(k, "idx", ""))) for k in keys
                          if not (isinstance(k, jax.tree_util.GetAttrKey) and k.name == "value"))
                 for keys, _ in paths]
        assert sorted(names) == sorted(args[0]), "model parameters are not the checkpoint's"

        def run(flat, tokens, lengths, limit):
            state = jax.tree_util.tree_unflatten(tree, [flat[n] for n in names])
            return nnx.merge(graph, state, rest)(tokens, lengths, limit, stop)

        lowered = jax.jit(per_device(run, (False, True, True, False))).lower(*args)
        with _persistent_cache_hits() as hits:
            executable = lowered.compile()
        if path is not None and not hits:
            _keep_executable(path, executable)
        return executable


def flax_model(compiled: CompiledProgram, model, shape: tuple[int, int]):
    """The Flax model that runs a batch padded to `shape`: `model` itself, or where that is
    None or a `ModelRunner`, the path that suits the shape."""
    if isinstance(model, ModelRunner):
        return model.model(structured_for(shape))
    return model if model is not None else load_model(compiled, structured_for(shape))


def _run_key(compiled: CompiledProgram, weights: dict) -> str:
    """What a kept run depends on: the weights, the model's code, the JAX version, the
    device count (a run over several devices runs on that many only) and the host's
    processor (the executable's machine code)."""
    import hashlib
    import importlib.metadata

    digest = hashlib.blake2b(digest_size=16)
    for package in ("jax", "jaxlib", "flax"):
        digest.update(f"{package} {importlib.metadata.version(package)}\n".encode())
    digest.update(code_digest().encode())  # ALTA's code (the model's among it)
    digest.update(repr(compiled.config).encode())
    if device_count() > 1:
        digest.update(f"devices {device_count()}".encode())
    digest.update(_host().encode())
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name], np.float32)
        digest.update(f"{name} {array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _keep_executable(path: Path, executable) -> None:
    """Keep a compiled run; a cache that cannot be written only costs speed."""
    from jax.experimental import serialize_executable

    from alta.files import write_atomically

    data = pickle.dumps(serialize_executable.serialize(executable))
    with contextlib.suppress(OSError):
        write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def _load_executable(path: Path, args: tuple):
    """The kept executable and its result on `args` (running it proves it loads), or None
    where there is none or it fails (then it is removed, to be built again)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    import jax
    from jax.experimental import serialize_executable

    try:
        executable = serialize_executable.deserialize_and_load(*pickle.loads(data))
        return executable, jax.block_until_ready(executable(*args))
    except Exception:  # damaged, or built by another JAX or for another layout
        with contextlib.suppress(OSError):
            path.unlink()
        return None


@contextlib.contextmanager
def _persistent_cache_hits():
    """Collects the persistent compilation cache's hits while the block runs."""
    from jax import monitoring

    hits: list[str] = []

    def listen(event: str, **_) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    monitoring.register_event_listener(listen)
    try:
        yield hits
    finally:
        monitoring.unregister_event_listener(listen)


def _host() -> str:
    """The processor an executable is built for (XLA's CPU code uses its features)."""
    import platform

    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return f"{platform.machine()} {line}"
    return f"{platform.machine()} {platform.processor()}"


def attention_heads(compiled: CompiledProgram) -> tuple:
    """The model's heads: the program's, then the fault detector's selection heads."""
    return model_heads(compiled.program, compiled.parameters)


def exact_length(compiled: CompiledProgram) -> int:
    """The most positions an input may take: the compiler's guarantee (and the position
    table's rows, where the model has one)."""
    cap = compiled.report.guaranteed_length
    positions = compiled.config.max_positions
    return min(cap, positions) if positions else cap


def check_length(compiled: CompiledProgram, longest: int) -> None:
    if longest > compiled.report.guaranteed_length:
        raise AltaError.at(f"an input needs {longest} positions, but the compiled model of "
                           f"{compiled.program.name} is exact only up to "
                           f"{compiled.report.guaranteed_length} (recompile with a larger "
                           "max_length)")


def _padded(batch: Batch, rows: int, positions: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch's tokens and lengths padded to (rows, positions), the rows rounded up to a
    multiple of the device count (alta.devices): extra rows are empty inputs (no valid
    position: they halt, or run masked, and are dropped), extra positions are padding."""
    rows = padded_rows(rows)
    tokens = np.zeros((rows, positions), np.int32)
    n, width = batch.tokens.shape
    tokens[:n, :min(width, positions)] = batch.tokens[:, :positions]
    lengths = np.zeros(rows, np.int32)
    lengths[:n] = batch.lengths
    return tokens, lengths


def bucket_shape(compiled: CompiledProgram, batch: Batch,
                 settings: BatchSettings = DEFAULT_BATCHES) -> tuple[int, int]:
    """The padded (rows, positions) a batch runs at: bucket shapes (alta.batching), so that
    runs of many sizes share a few compiled executables."""
    longest = int(batch.lengths.max(initial=0))
    return (row_bucket(len(batch.texts), settings),
            position_bucket(max(longest, 1), exact_length(compiled), settings))


def run_compiled(compiled: CompiledProgram, texts, max_layers: int | None = None,
                 model=None, undefined: str = "error", batch: Batch | None = None,
                 shape: tuple[int, int] | None = None) -> CompiledRun:
    """Run the compiled model on input strings, as one batch (`run_many` splits many inputs
    into batches). Where the network flags a read of an undefined head, `undefined` says
    what happens: "error" stops that sequence and raises the interpreter's error for the
    batch; "stop" stops it and lists the faults on the result; "continue" runs on (the raw
    outputs; `faults` then says which sequences were flagged and where, but not in which
    layer). `batch` is `texts` already framed; the run is padded to `shape` (rows,
    positions), by default the batch's bucket shape."""
    program = compiled.program
    batch = batch if batch is not None else encode_batch(program, texts)
    check_length(compiled, int(batch.lengths.max(initial=0)))
    shape = shape or bucket_shape(compiled, batch)
    model = model or load_model(compiled, structured_for(shape))
    limit = program.max_layers if max_layers is None else max_layers
    n, width = len(batch.texts), batch.tokens.shape[1]
    tokens, lengths = put_batch(*_padded(batch, *shape))
    if isinstance(model, ModelRunner):
        residual, layers, stopped = model(tokens, lengths, limit, undefined != "continue")
    else:
        from alta.model import run_model

        residual, layers, stopped = run_model(model, tokens, lengths, limit,
                                              undefined != "continue")
    return read_run(compiled, batch, to_host(residual)[:n, :width], to_host(layers)[:n],
                    to_host(stopped)[:n], undefined)


def read_run(compiled: CompiledProgram, batch: Batch, residual: np.ndarray,
             layers: np.ndarray, stopped: np.ndarray, undefined: str = "error") -> CompiledRun:
    """A finished run read back, whichever framework ran it: faults, halting and outputs
    decoded from the final residual; with `undefined="error"` a fault raises the
    interpreter's error for the batch."""
    program = compiled.program
    faults = read_faults(compiled, residual, batch.valid, layers)
    halted = stopped if program.halt is not None else np.ones(len(batch.texts), bool)
    values = compiled.layout.decode(residual, program, program.output.reads)
    outputs = tuple(decode_outputs(program, values, batch.lengths))
    result = CompiledRun(batch, residual, layers, halted, outputs, faults)
    if faults and undefined == "error":
        raise fault_error(compiled, batch, result.first_fault)
    return result


@dataclass(frozen=True)
class Outcome:
    """One input's result in a run of many (`run_many`)."""

    index: int  # in input order
    text: str
    output: str
    layers: int
    halted: bool
    fault: Fault | None = None  # its `sequence` is `index`

    @property
    def stuck(self) -> bool:
        """Did it run out of layers (without a fault)?"""
        return not self.halted and self.fault is None


def _fault_key(fault: Fault) -> tuple[int, int, int, int]:
    """The order in which the interpreter reports faults (`CompiledRun.first_fault`)."""
    return fault.layer, fault.site, fault.sequence, fault.position


def run_many(compiled: CompiledProgram, texts: Iterable[str], max_layers: int | None = None,
             model=None, undefined: str = "error",
             settings: BatchSettings = DEFAULT_BATCHES) -> Iterator[list[Outcome]]:
    """Run any number of inputs, read lazily a window at a time (alta.batching): yields each
    window's outcomes in input order as soon as it has run, so memory is bounded by the
    window and a batch, not by the inputs.

    With `undefined="error"` the error raised is the one a single batch of all the inputs
    raises (the interpreter's): the earliest layer, then site, then input, then position, over
    every input. So after the first fault nothing more is yielded, and the remaining inputs
    still run, but only up to that fault's layer (a later fault cannot win), before the
    error is raised. "stop" and "continue" yield every outcome with its fault (see
    `run_compiled`)."""
    program = compiled.program
    model = model or ModelRunner(compiled, keep=False)  # each shape on its own path
    limit = program.max_layers if max_layers is None else max_layers
    mode = "stop" if undefined == "error" else undefined
    first: tuple[Fault, str] | None = None  # the winning fault so far, and its input
    offset = 0
    for window in windows(texts, settings.window):
        framed = [encode(program, text) for text in window]
        lengths = [len(ids) for ids in framed]
        check_length(compiled, max(lengths, default=0))
        outcomes: list[Outcome | None] = [None] * len(window)
        for plan in plan_batches(lengths, exact_length(compiled), settings):
            batch = framed_batch([window[i] for i in plan.indices],
                                  [framed[i] for i in plan.indices])
            run = run_compiled(compiled, batch.texts, min(limit, first[0].layer) if first
                               else limit, model, mode, batch, (plan.rows, plan.positions))
            faults = {f.sequence: f for f in run.faults}
            for row, i in enumerate(plan.indices):
                fault = faults.get(row)
                if fault is not None:
                    fault = Fault(offset + i, fault.layer, fault.site, fault.position)
                    if undefined == "error" and (first is None or
                                                 _fault_key(fault) < _fault_key(first[0])):
                        first = fault, window[i]
                outcomes[i] = Outcome(offset + i, window[i], run.outputs[row],
                                      int(run.layers[row]), bool(run.halted[row]), fault)
        offset += len(window)
        if first is None:
            yield outcomes
    if first is not None:
        raise _fault_error(compiled, first[0], first[1])


def read_faults(compiled: CompiledProgram, residual: np.ndarray, valid: np.ndarray,
                layers: np.ndarray) -> tuple[Fault, ...]:
    """The fault flags of final (or per-layer) residuals: per flagged sequence, its first
    site and that site's first position (the flags are set in the layer it stopped at)."""
    dims = list(compiled.config.fault_dims)
    if not dims:
        return ()
    flags = (residual[..., dims] > 0.5) & valid[..., None]  # (batch, positions, sites)
    out = []
    for b in np.flatnonzero(flags.any(axis=(1, 2))):
        site = int(np.flatnonzero(flags[b].any(axis=0))[0])
        position = int(np.flatnonzero(flags[b, :, site])[0])
        out.append(Fault(int(b), int(layers[b]), site, position))
    return tuple(out)


def fault_error(compiled: CompiledProgram, batch: Batch, fault: Fault) -> AltaRuntimeError:
    """The interpreter's error for an undefined read, from the checkpoint's site table."""
    return _fault_error(compiled, fault, batch.texts[fault.sequence])


def _fault_error(compiled: CompiledProgram, fault: Fault, text: str) -> AltaRuntimeError:
    site = compiled.faults[fault.site]
    same = compiled.program.head(site.head).same
    return AltaRuntimeError.at_run(undefined_read(site.head, same), site.span,
                                   compiled.program.source, fault.layer, fault.position, text)


def trace_compiled(compiled: CompiledProgram, batch: Batch, max_layers: int | None = None,
                   model=None, shape: tuple[int, int] | None = None) -> Iterator[CompiledLayer]:
    """The initial state, then every layer's residuals, one layer at a time (nothing is kept,
    so long runs of wide models fit in memory); run padded to `shape` (rows, positions), by
    default the batch's bucket shape."""
    from flax import nnx

    from alta.model import embed_and_check, step_and_check

    check_length(compiled, int(batch.lengths.max(initial=0)))
    # Run at the bucket shape (a few compiled steps for any batch), report at the batch's.
    shape = shape or bucket_shape(compiled, batch)
    model = flax_model(compiled, model, shape)
    limit = compiled.program.max_layers if max_layers is None else max_layers
    n, width = batch.tokens.shape
    tokens, lengths = _padded(batch, *shape)
    tokens, valid = put_batch(tokens, np.arange(tokens.shape[1])[None, :] < lengths[:, None])
    x, stopped = embed_and_check(model, tokens, valid)
    # The model's graph walked once, not at every layer (a fifth of verifying subleq's 136
    # layers).
    step = nnx.cached_partial(step_and_check, model)
    running = ~to_host(stopped)[:n]
    yield CompiledLayer(0, np.zeros_like(running), None, to_host(x)[:n, :width],
                        running.copy())
    layer = 0
    while running.any() and layer < limit:
        layer += 1
        active = running.copy()
        attended, x, stopped = step(x, valid, *put_batch(_rows(active, len(lengths))))
        running = running & ~to_host(stopped)[:n]
        yield CompiledLayer(layer, active, to_host(attended)[:n, :width],
                            to_host(x)[:n, :width], running.copy())


def _rows(active: np.ndarray, rows: int) -> np.ndarray:
    """`active` for the padded batch: padding rows never run."""
    out = np.zeros(rows, bool)
    out[:len(active)] = active
    return out


def decoded_trace(compiled: CompiledProgram, texts, max_layers: int | None = None,
                  model=None):
    """The compiled model's run of `texts`, read back into the interpreter's trace
    (`alta.interpreter.RunResult`): every variable and head output decoded from the residual
    after every layer (`ResidualLayout.decode`), and each head marked undefined where the
    network's own selection head (compiler/faults.py: k / (k + 1) for k selected positions)
    says it selected none, or, categorical, several. `model` may carry a learned MLP."""
    from alta.compiler.faults import SELECTED
    from alta.interpreter import LayerRecord, RunResult

    program = compiled.program
    batch = encode_batch(program, texts)
    variables = [v.name for v in program.variables]

    def decoded(residual, names):
        values = compiled.layout.decode(residual, program)
        return {n: values[n] for n in names}, values

    selection = {b.name: b.start for b in compiled.layout.blocks if b.name.endswith(SELECTED)}

    def undefined(written) -> dict[str, np.ndarray]:
        """From what this layer's attention wrote (a learned MLP may not reset the selection
        heads' blocks, so the residual alone can hold earlier layers' writes too)."""
        marks = {}
        for h in program.heads:
            dim = selection.get(h.name + SELECTED)
            if dim is None:  # no read of it in the MLP: no selection head
                marks[h.name] = np.zeros(batch.tokens.shape, bool)
                continue
            selected = written[..., dim]  # none: 0, one: 1/2, several: >= 2/3
            if h.same:  # several agree where the averaged one-hot has a component near 1
                block = compiled.layout.block(h.name)
                top = written[..., block.start:block.start + block.size].max(axis=-1)
                n = written.shape[-2]
                marks[h.name] = (selected < 0.25) | (top < 1.0 - 0.5 / n)
                continue
            marks[h.name] = (selected < 0.25) | ((selected > 7 / 12) & (not h.numerical))
        return marks

    steps = iter(trace_compiled(compiled, batch, max_layers, model))
    first = next(steps)
    initial, _ = decoded(first.after_mlp, variables)
    records, final, layers = [], initial, np.zeros(len(batch.texts), np.int64)
    running, before = first.running, first.after_mlp
    for step in steps:
        attended, _ = decoded(step.after_attention, variables + [h.name for h in program.heads])
        final, _ = decoded(step.after_mlp, variables)
        records.append(LayerRecord(step.layer, step.active, attended,
                                   undefined(step.after_attention - before), final))
        layers += step.active
        running, before = step.running, step.after_mlp
    halted = ~running if program.halt is not None else np.ones(len(batch.texts), bool)
    outputs = tuple(decode_outputs(program, final, batch.lengths))
    return RunResult(batch, initial, final, layers, halted, tuple(records), outputs)
