"""Execution traces as datasets: the interpreter's state at every layer and position.

A dataset is a directory of shards plus `manifest.json`. Each row is one position of one
input at one layer (only inputs still running at that layer), with the symbolic state after
attention (`attention.NAME`, variables and head outputs; a head is null where its output is
undefined) and after the MLP (`mlp.NAME`, variables). With vectors, `mlp_input` is the
residual vector after attention in the compiled layout (undefined head outputs zero;
noise shaped like what attention outputs there: one-hots, even averages or random weights
summing to 1 over a categorical block, uniform in [0, 1) otherwise; or, "compiled", exactly
what the compiled model's attention outputs there, so that a learned MLP trains on the
inputs it will see in that model) and `mlp_output` what
the MLP must add to it: the encoded state after the MLP (head outputs zero again) minus
`mlp_input`, which is what the compiled MLP computes.

Shard k holds inputs k * shard_size ... and is a pure function of (program, sampler, seed,
k): its inputs are drawn from a generator seeded with (seed, k). A shard is written to a
temporary name and renamed, so a directory only ever holds complete shards; running again
with the same settings writes only the missing ones (an interrupted run resumes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from alta import ir
from alta.compiler.layout import ResidualLayout, build_layout
from alta.errors import AltaError
from alta.files import SOURCE_PATH_FIELDS, source_fields, write_atomically, write_json
from alta.tasks import Task

SCHEMA_VERSION = 2  # 2: noise in undefined categorical head outputs sums to 1
FORMATS = ("parquet", "jsonl")
# how undefined head outputs appear in vectors (the module docstring says what each is)
UNDEFINED_FILLS = ("noise", "zero", "compiled")


@dataclass(frozen=True)
class TraceSettings:
    """Everything a dataset depends on besides the program (recorded in the manifest)."""

    samples: int
    seed: int = 0
    lengths: tuple[int, int] | None = None  # size drawn uniformly from A..B per input
    shard_size: int = 256
    format: str = "parquet"
    vectors: bool = False
    undefined: str = "noise"  # how undefined head outputs appear in vectors: UNDEFINED_FILLS

    @property
    def shards(self) -> int:
        return -(-self.samples // self.shard_size)


def shard_inputs(program: ir.Program, task: Task | None, settings: TraceSettings,
                 shard: int) -> list[str]:
    """The inputs of one shard: a pure function of the program, sampler, seed and index."""
    from alta.sampling import default_size, sample_inputs

    rng = random.Random(f"alta-trace/{settings.seed}/{shard}")
    count = min(settings.shard_size, settings.samples - shard * settings.shard_size)
    size = default_size(program, task)
    if task is not None:
        low, high = settings.lengths or (size, size)
        return [task.sample(rng, rng.randint(low, high)) for _ in range(count)]
    low, high = settings.lengths or (0, size)
    return [sample_inputs(program, 1, high, seed=rng.randrange(2**31), min_length=low)[0]
            for _ in range(count)]


# ---- rows ------------------------------------------------------------------------------------

def column_names(program: ir.Program, vectors: bool) -> list[str]:
    names = ["example", "input", "layer", "position", "token"]
    names += [f"attention.{v.name}" for v in program.variables]
    names += [f"attention.{h.name}" for h in program.heads]
    names += [f"mlp.{v.name}" for v in program.variables]
    return names + (["mlp_input", "mlp_output"] if vectors else [])


def shard_columns(program: ir.Program, inputs: list[str], first_example: int,
                  settings: TraceSettings, layout: ResidualLayout | None = None,
                  shard: int = 0) -> dict[str, list]:
    """The rows of one shard, as columns of plain Python values."""
    from alta.interpreter import run

    result = run(program, inputs, trace=True)
    if not result.halted.all():
        b = result.not_halted[0]
        raise AltaError.at(f"input {inputs[b]!r} did not halt within {program.max_layers} "
                           f"layers; traces are of complete runs")
    valid = result.batch.valid
    columns: dict[str, list] = {name: [] for name in column_names(program, settings.vectors)}
    layout = layout or build_layout(program)
    noise = np.random.default_rng([settings.seed, shard])
    compiled_layers = _compiled_attention(program, result.batch) \
        if settings.vectors and settings.undefined == "compiled" else None
    for record in result.trace:
        b, p = np.nonzero(record.active[:, None] & valid)
        columns["example"] += (b + first_example).tolist()
        columns["input"] += [inputs[i] for i in b]
        columns["layer"] += [record.layer] * len(b)
        columns["position"] += p.tolist()
        columns["token"] += [program.vocab[t] for t in result.batch.tokens[b, p]]
        attended = {name: values[b, p] for name, values in record.after_attention.items()}
        undefined = {name: mask[b, p] for name, mask in record.undefined.items()}
        after = {name: values[b, p] for name, values in record.after_mlp.items()}
        for v in program.variables:
            columns[f"attention.{v.name}"] += _python(v.type, attended[v.name])
            columns[f"mlp.{v.name}"] += _python(v.type, after[v.name])
        for h in program.heads:
            values = _python(h.type, attended[h.name])
            columns[f"attention.{h.name}"] += [None if u else x
                                               for x, u in zip(values, undefined[h.name])]
        if settings.vectors:
            if compiled_layers is None:
                x = encode_state(layout, attended, undefined, settings.undefined, noise)
            else:
                x = encode_state(layout, attended, undefined, "zero", noise)
                _fill_from(x, layout, undefined, next(compiled_layers)[b, p])
            y = encode_state(layout, after, {}, "zero", noise)
            columns["mlp_input"] += list(x)
            columns["mlp_output"] += list(y - x)
    return columns


def _compiled_attention(program: ir.Program, batch) -> Iterator[np.ndarray]:
    """Per layer, the compiled model's residual after attention on `batch`, (inputs,
    positions, D). The compiled model runs exactly as the interpreter does (same halting, same
    defined values), so its layers line up with the interpreter's trace."""
    from alta.compiled import trace_compiled

    for step in trace_compiled(_compiled(program), batch):
        if step.after_attention is not None:
            yield step.after_attention


_COMPILED: dict[str, object] = {}  # one compilation per program source and parameters


def _compiled(program: ir.Program):
    from alta.compiler import compile_program

    key = f"{program.source.text}\0{program.name}\0{program.params}"
    if key not in _COMPILED:
        _COMPILED.clear()
        _COMPILED[key] = compile_program(program)
    return _COMPILED[key]


def _fill_from(x: np.ndarray, layout: ResidualLayout, undefined: dict[str, np.ndarray],
               attended: np.ndarray) -> None:
    """Undefined head outputs in `x` (rows, D) set to the compiled attention's `attended`
    (rows, >= D: the compiled layout puts its own state after the program's)."""
    for name, gone in undefined.items():
        block = layout.block(name)
        x[gone, block.start:block.stop] = attended[gone, block.start:block.stop]


def _python(type_: ir.ValueType, values: np.ndarray) -> list:
    if isinstance(type_, ir.SetValued):
        return [[i for i in range(type_.size) if (int(m) >> i) & 1] for m in values]
    if isinstance(type_, ir.Numerical):
        return [float(x) for x in values]
    return [int(x) for x in values]


def encode_state(layout: ResidualLayout, values: dict[str, np.ndarray],
                 undefined: dict[str, np.ndarray], fill: str,
                 noise: np.random.Generator) -> np.ndarray:
    """Symbolic values (rows,) per name -> residual vectors (rows, D), float32. Names not in
    `values` (head outputs after the MLP) and undefined head outputs are zero, or noise with
    fill="noise" (`_filler`)."""
    out = layout.encode(values)
    for block in layout.blocks:
        gone = undefined.get(block.name)
        if block.name in values and gone is not None and gone.any():
            view = out[:, block.start:block.stop]
            view[gone] = _filler(block, int(gone.sum()), noise) if fill == "noise" else 0.0
    return out


def _filler(block, rows: int, noise: np.random.Generator) -> np.ndarray:
    """What an undefined head output may look like in the Transformer: its attention averages
    the values of the positions it weighs (all of them, or some, or one), so a categorical
    block holds weights that sum to 1: per row, at random, a one-hot, an even average over a
    random subset, or Dirichlet weights. Other blocks are uniform in [0, 1)."""
    if block.kind != "categorical":
        return noise.random((rows, block.size))
    out = noise.dirichlet(np.full(block.size, 0.3), size=rows)
    kind = noise.integers(0, 3, size=rows)
    one_hot = np.eye(block.size)[noise.integers(0, block.size, size=rows)]
    subset = noise.random((rows, block.size)) < noise.random((rows, 1))
    subset[np.arange(rows), noise.integers(0, block.size, size=rows)] = True
    out[kind == 1] = one_hot[kind == 1]
    out[kind == 2] = (subset / subset.sum(axis=1, keepdims=True))[kind == 2]
    return out


# ---- files -----------------------------------------------------------------------------------

def shard_path(directory: Path, shard: int, settings: TraceSettings) -> Path:
    """Shards live in DIR/data/, apart from the manifest, so that a reader given the folder
    (pandas, pyarrow) finds only data files; they are named as Hugging Face `datasets`
    names a train split's shards, so `load_dataset(DIR)` needs no arguments."""
    return directory / "data" / f"train-{shard:05d}-of-{settings.shards:05d}.{settings.format}"


def arrow_schema(program: ir.Program, vectors: bool):
    """Explicit column types, so that every shard has the same schema (a head that is
    undefined everywhere in one shard would otherwise be typed as null there)."""
    import pyarrow as pa

    def of(type_: ir.ValueType):
        if isinstance(type_, ir.SetValued):
            return pa.list_(pa.int64())
        return pa.float64() if isinstance(type_, ir.Numerical) else pa.int64()

    fields = [("example", pa.int64()), ("input", pa.string()), ("layer", pa.int64()),
              ("position", pa.int64()), ("token", pa.string())]
    for name in column_names(program, vectors)[5:]:
        if name in ("mlp_input", "mlp_output"):
            fields.append((name, pa.list_(pa.float32())))
        else:
            fields.append((name, of(program.type_of(name.partition(".")[2]))))
    return pa.schema(fields)


def write_shard(columns: dict[str, list], path: Path, format: str, schema=None) -> None:
    """All of the shard or nothing (written to a temporary file, then renamed)."""
    def write(tmp: str) -> None:
        if format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table(columns, schema=schema), tmp)
        else:
            names = list(columns)
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(dict(zip(names, (_jsonable(v) for v in row))),
                                        separators=(",", ":")) + "\n"
                             for row in zip(*(columns[n] for n in names)))

    write_atomically(path, write)


def _jsonable(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


def manifest_for(program: ir.Program, task: Task | None, settings: TraceSettings,
                 layout: ResidualLayout, directory: Path | None = None) -> dict:
    """The dataset's manifest; `directory` is the dataset's (source paths are also recorded
    relative to it, so that the dataset works from any working directory)."""
    return {
        "format": "alta-trace-dataset",
        "schema_version": SCHEMA_VERSION,
        "program": program.name,
        **source_fields(program, directory),
        "sampler": task.path.name if task is not None else "generic (uniform vocabulary tokens)",
        "settings": asdict(settings),
        "columns": _column_docs(program, settings.vectors),
        "labels": {b.name: list(b.labels) for b in layout.blocks if b.kind != "numerical"},
        "layout": layout.to_json(),
    }


def _column_docs(program: ir.Program, vectors: bool) -> dict[str, str]:
    docs = {"example": "input index in the dataset", "input": "the input text",
            "layer": "1-based layer", "position": "position in the framed input",
            "token": "the token at the position"}
    for name in column_names(program, vectors)[5:]:
        stage, _, var = name.partition(".")
        if name == "mlp_input":
            docs[name] = "residual vector after attention (compiled layout)"
        elif name == "mlp_output":
            docs[name] = "what the MLP adds: encoded state after the MLP minus mlp_input"
        else:
            type_ = program.type_of(var)
            when = "after attention" if stage == "attention" else "after the MLP"
            docs[name] = f"{var} {when}: {type_.describe()}" + (
                " (null where undefined)" if var in {h.name for h in program.heads} else "")
    return docs


def write_dataset(program: ir.Program, task: Task | None, settings: TraceSettings,
                  directory: Path, progress: Callable[[int, int, int], None] | None = None
                  ) -> dict:
    """Write the missing shards of a dataset (all of them, for a new directory) and return
    the manifest. `progress(shards done, shards, rows written)` after each shard. The three
    steps are separate functions so that other executors (alta/pipelines.py: Apache Beam)
    write the very same files: `prepare_dataset`, then `trace_shard` for every shard index
    in any order or in parallel, then `finish_dataset`."""
    directory = Path(directory)
    layout = build_layout(program)
    manifest = prepare_dataset(program, task, settings, directory, layout)
    schema = shard_schema(program, settings)
    counts = {}
    for shard in range(settings.shards):
        counts[shard] = trace_shard(program, task, settings, directory, shard, layout, schema)
        if progress:
            progress(len(counts), settings.shards, sum(counts.values()))
    return finish_dataset(manifest, settings, counts, directory)


def prepare_dataset(program: ir.Program, task: Task | None, settings: TraceSettings,
                    directory: Path, layout: ResidualLayout | None = None) -> dict:
    """Before any shard: check the settings and that `directory` is new or holds (part of)
    this very dataset, create DIR/data, remove what a killed run left half-written, and write
    the manifest without counts (which `finish_dataset` adds). Returns that manifest."""
    if settings.format not in FORMATS:
        raise AltaError.at(f"unknown format {settings.format!r}; expected one of "
                           f"{', '.join(FORMATS)}")
    if settings.undefined not in UNDEFINED_FILLS:
        raise AltaError.at(f"unknown fill {settings.undefined!r} for undefined head outputs; "
                           f"expected one of {', '.join(UNDEFINED_FILLS)}")
    directory = Path(directory)
    manifest = manifest_for(program, task, settings, layout or build_layout(program), directory)
    if not can_resume(program, task, settings, directory):
        raise AltaError.at(f"{directory} holds a trace dataset made with other settings "
                           f"or another program; choose a new directory")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    for stale in (directory / "data").glob(".train-*.tmp"):  # from a run killed mid-shard
        stale.unlink()
    write_json(directory / "manifest.json", manifest)
    return manifest


def shard_schema(program: ir.Program, settings: TraceSettings):
    """What `trace_shard` takes as `schema`: the Arrow schema for Parquet, None for JSONL."""
    return arrow_schema(program, settings.vectors) if settings.format == "parquet" else None


def trace_shard(program: ir.Program, task: Task | None, settings: TraceSettings,
                directory: Path, shard: int, layout: ResidualLayout | None = None,
                schema=None) -> int:
    """Write shard `shard` of the dataset in `directory` (prepared by `prepare_dataset`)
    unless it is complete already, atomically; its row count. Depends on nothing but its
    arguments, so shards may be written in any order, by any process, more than once."""
    path = shard_path(Path(directory), shard, settings)
    if path.exists():
        return _count_rows(path, settings.format)
    inputs = shard_inputs(program, task, settings, shard)
    columns = shard_columns(program, inputs, shard * settings.shard_size, settings, layout,
                            shard)
    write_shard(columns, path, settings.format, schema)
    return len(columns["example"])


def finish_dataset(manifest: dict, settings: TraceSettings, counts: dict[int, int],
                   directory: Path) -> dict:
    """After every shard: the manifest with the row count of each shard (`counts`: shard
    index -> rows, in any order), written to DIR/manifest.json and returned."""
    missing = sorted(set(range(settings.shards)) - set(counts))
    if missing:
        raise AltaError.at(f"{directory}: shards {missing} were not written")
    manifest = {**manifest, "counts": {
        "shards": settings.shards, "inputs": settings.samples,
        "rows_per_shard": {str(shard): counts[shard] for shard in range(settings.shards)}}}
    write_json(Path(directory) / "manifest.json", manifest)
    return manifest


def can_resume(program: ir.Program, task: Task | None, settings: TraceSettings,
               directory: Path) -> bool:
    """Whether `directory` is empty of datasets or holds (part of) this very one."""
    manifest_file = Path(directory) / "manifest.json"
    if not manifest_file.exists():
        return True
    def comparable(manifest: dict) -> dict:  # where the program was read from does not matter
        return {k: v for k, v in manifest.items() if k not in ("counts", *SOURCE_PATH_FIELDS)}

    existing = json.loads(manifest_file.read_text())
    manifest = manifest_for(program, task, settings, build_layout(program))
    return comparable(existing) == comparable(json.loads(json.dumps(manifest)))


def _count_rows(path: Path, format: str) -> int:
    if format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def read_dataset(directory: Path) -> tuple[dict, Iterator[dict[str, list]]]:
    """The manifest and the shards' columns, one shard at a time."""
    directory = Path(directory)
    manifest_file = directory / "manifest.json"
    if not manifest_file.exists():
        raise AltaError.at(f"{directory} is not a trace dataset (no manifest.json)")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format") != "alta-trace-dataset":
        raise AltaError.at(f"{manifest_file} is not an ALTA trace dataset manifest")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise AltaError.at(f"{directory}: trace schema version {manifest.get('schema_version')}"
                           f", this ALTA reads version {SCHEMA_VERSION}")
    settings = TraceSettings(**{**manifest["settings"], "lengths": tuple(
        manifest["settings"]["lengths"]) if manifest["settings"]["lengths"] else None})

    def shards():
        for shard in range(settings.shards):
            path = shard_path(directory, shard, settings)
            if not path.exists():
                raise AltaError.at(f"{directory}: {path.name} is missing (an unfinished run? "
                                   f"run `alta trace` again with the same settings)")
            if settings.format == "parquet":
                import pyarrow.parquet as pq

                yield pq.read_table(path).to_pydict()
            else:
                rows = [json.loads(line) for line in path.read_text().splitlines()]
                yield {name: [r[name] for r in rows] for name in rows[0]} if rows else {}

    return manifest, shards()
