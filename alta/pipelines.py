"""Trace datasets as an Apache Beam pipeline: one element per shard index.

A shard is a pure function of (program, sampler, settings, seed, shard index)
(alta/traces.py), so the pipeline is thin: the driver prepares the directory and writes the
manifest (`prepare_dataset`), each element traces one shard index on whichever worker gets
it (`trace_shard`: skipped where the shard is complete, written atomically otherwise), and
the last step adds the row counts to the manifest (`finish_dataset`). The files are the
local writer's, byte for byte, on any runner.

What travels to the workers is a `TraceJob`: plain data, the program's and its task
module's source text rather than the objects (a task module is loaded by path, not imported
by name, so its functions do not pickle), checked again once per worker. The directory must
be one path that the driver and every worker see: the local disk for the DirectRunner, a
shared file system (NFS, a mounted bucket) on a cluster.

This module imports Apache Beam (the `beam` extra); nothing else in ALTA imports it or
this module, except `alta trace --runner beam`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alta import ir
from alta.checker import check_source
from alta.compiler.layout import build_layout
from alta.errors import AltaError, read_text
from alta.tasks import Task, load_task_source
from alta.traces import (
    TraceSettings,
    finish_dataset,
    prepare_dataset,
    shard_path,
    shard_schema,
    trace_shard,
)

try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions
except ModuleNotFoundError as _missing:
    if not (_missing.name or "").startswith("apache_beam"):
        raise
    raise AltaError.at("tracing with Apache Beam needs the 'beam' extra: "
                       "pip install -e '.[beam]' (or pip install 'alta[beam]')") from None


@dataclass(frozen=True)
class TraceJob:
    """Everything a worker needs to write any shard of one dataset, as picklable text."""

    program_source: str
    program_path: str
    task_source: str | None
    task_path: str | None
    settings: TraceSettings
    directory: str
    manifest: dict  # as the driver wrote it (source paths as the driver sees them)
    params: tuple[tuple[str, object], ...] = ()  # the program's parameter values

    @classmethod
    def of(cls, program: ir.Program, task: Task | None, settings: TraceSettings,
           directory: Path, manifest: dict) -> TraceJob:
        return cls(program.source.text, program.source.path,
                   None if task is None else read_text(task.path, "task module"),
                   None if task is None else str(task.path), settings, str(directory),
                   manifest, program.params)

    def load(self) -> tuple[ir.Program, Task | None]:
        """The program and task, checked and loaded again from their text."""
        program = check_source(self.program_source, self.program_path, dict(self.params))
        task = (None if self.task_source is None
                else load_task_source(self.task_source, Path(self.task_path),
                                      dict(self.params)))
        return program, task


# What a failed element's error starts with, so that the driver finds it in whatever the
# runner reports (an exception in-process, a worker's traceback as text on a cluster).
_FAILED = "alta trace: shard"
_FAILED_PATTERN = re.compile(re.escape(_FAILED) + r" (\d+) \(([^)]*)\) failed: (.*?)"
                             r"(?: \[while running [^\n]*)?$", re.MULTILINE)


class ShardFailed(Exception):
    """A shard could not be written (its cause is chained); nothing of it is on disk."""


class _TraceShard(beam.DoFn):
    """Shard index -> (index, rows), the shard written unless it was complete."""

    def __init__(self, job: TraceJob) -> None:
        super().__init__()
        self._job = job

    def setup(self) -> None:
        # Once per worker, not per element: checking the program, loading the task module,
        # the layout and the schema are the same for every shard.
        program, task = self._job.load()
        self._program, self._task = program, task
        self._schema = shard_schema(program, self._job.settings)
        self._layout = build_layout(program)

    def process(self, shard: int):
        job = self._job
        try:
            rows = trace_shard(self._program, self._task, job.settings, Path(job.directory),
                               shard, self._layout, self._schema)
        except Exception as exc:
            name = shard_path(Path(job.directory), shard, job.settings).name
            raise ShardFailed(f"{_FAILED} {shard} ({name}) failed: {_cause(exc)}") from exc
        yield shard, rows


def _cause(exc: BaseException) -> str:
    """An error on one line: an AltaError's message as the command prints it, else the
    exception's type and text."""
    text = exc.first.message if isinstance(exc, AltaError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _finish(pairs: list[tuple[int, int]], job: TraceJob) -> dict:
    return finish_dataset(job.manifest, job.settings, dict(pairs), Path(job.directory))


class TraceDataset(beam.PTransform):
    """Write the missing shards of the dataset a `TraceJob` describes, then its manifest's
    counts; the directory must be prepared (`prepare_dataset`), as `run_trace_pipeline`
    does. Yields the finished manifest."""

    def __init__(self, job: TraceJob) -> None:
        super().__init__()
        self._job = job

    def expand(self, pbegin):
        # Create redistributes its elements (a reshuffle), so shards spread over the workers
        # instead of running one after another where the element list was read.
        return (pbegin
                | "Shard indices" >> beam.Create(range(self._job.settings.shards))
                | "Trace shards" >> beam.ParDo(_TraceShard(self._job))
                | "Collect counts" >> beam.combiners.ToList()
                | "Write manifest" >> beam.Map(_finish, self._job))


def beam_options(options: Sequence[str] = (), quiet: bool = False) -> PipelineOptions:
    """Pipeline options from `KEY=VALUE` (or `KEY`, a flag) strings, Beam's own option
    names without the dashes (`runner=FlinkRunner`, `direct_num_workers=2`); a name Beam
    does not know is an error, not a warning (a misspelt option would silently do nothing).
    The default runner is Beam's DirectRunner. With `quiet`, the DirectRunner's workers log
    only critical errors unless an option sets their level: they log to this terminal (a
    failed element's traceback, once per worker), and the pipeline's error names the shard
    that failed anyway."""
    flags = []
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not key:
            raise AltaError.at(f"--beam-option expects KEY=VALUE, got {option!r}")
        flags.append(f"--{key}={value}" if sep else f"--{key}")
    parsed = PipelineOptions(flags)
    known = parsed.get_all_options()
    unknown = sorted(set(parsed.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        hints = [f"did you mean {close[0]}?" for name in unknown
                 if (close := difflib.get_close_matches(name, list(known), n=1))]
        raise AltaError.at(f"Apache Beam has no pipeline option {', '.join(unknown)}"
                           + (f" ({'; '.join(hints)})" if hints else ""),
                           notes=("--beam-option takes Beam's option names without the "
                                  "dashes, e.g. --beam-option direct_num_workers=2",))
    workers = parsed.view_as(WorkerOptions)
    local = runner(parsed).lower() in ("direct", "directrunner")
    if quiet and local and workers.default_sdk_harness_log_level is None:
        workers.default_sdk_harness_log_level = "CRITICAL"
    return parsed


def runner(options: PipelineOptions) -> str:
    """The runner the options choose (Beam's default: the DirectRunner)."""
    return options.get_all_options()["runner"] or "DirectRunner"


def run_trace_pipeline(program: ir.Program, task: Task | None, settings: TraceSettings,
                       directory: Path, options: PipelineOptions | None = None) -> dict:
    """Write the missing shards of a dataset with a Beam pipeline (the DirectRunner unless
    `options` choose another runner) and return the manifest: the same files as
    `alta.traces.write_dataset` writes. A shard that fails stops the pipeline with an
    `AltaError` naming it; the complete shards stay, and running again resumes."""
    directory = Path(directory)
    manifest = prepare_dataset(program, task, settings, directory)
    job = TraceJob.of(program, task, settings, directory, manifest)
    try:
        with beam.Pipeline(options=options or PipelineOptions([])) as pipeline:
            _ = pipeline | "Trace dataset" >> TraceDataset(job)
    except Exception as exc:  # a runner reports a worker's error in its own way
        raise _pipeline_error(exc, directory) from exc
    written = json.loads((directory / "manifest.json").read_text())
    if "counts" not in written:
        raise AltaError.at(f"the Beam pipeline finished without writing the counts of "
                           f"{directory}/manifest.json (did the workers see {directory}?)")
    return {**manifest, "counts": written["counts"]}  # as write_dataset returns it


def _pipeline_error(exc: Exception, directory: Path) -> AltaError:
    text = "\n".join(str(e) for e in _chain(exc))
    resume = "the complete shards are kept; the same command again resumes"
    found = _FAILED_PATTERN.search(text)
    if found:
        shard, name, cause = found.groups()
        return AltaError.at(f"the Beam pipeline failed at shard {shard} "
                            f"({directory}/data/{name}): {cause}", notes=(resume,))
    # Not a shard's own failure (a worker that cannot check the program, a runner's error):
    # ALTA's message if there is one, else the last line of what the runner reports, which
    # is a worker's traceback on some runners.
    known = next((e for e in _chain(exc) if isinstance(e, AltaError)), None)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    what = _cause(known) if known else lines[-1] if lines else type(exc).__name__
    return AltaError.at(f"the Beam pipeline failed: {what}", notes=(resume,))


def _chain(exc: BaseException | None):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__
