"""The `alta` command line: one handler per sub-command that calls its stages in order
(load, choose inputs, run, print). Its arguments are declared in `alta.arguments`; the text
it prints is rendered by `alta.reports`.

Sub-commands import only what they need: checking and interpreting never import JAX.
Every failure a user can cause prints a located message and exits with status 1; no
Python traceback reaches the terminal (set ALTA_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys

from alta.arguments import build_parser
from alta.errors import AltaError, Diagnostic, read_text, undefined_read
from alta.progress import progress_bar

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    # `alta run FILE --backend compiled "1 0"`: inputs may come after options too.
    if command == "run" and not any(e.startswith("-") for e in extra):
        args.inputs = list(args.inputs) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if command is None:
        parser.print_help()
        return EXIT_USAGE
    if argv is None and command in ("run", "verify", "test"):
        # The command line's own process (not a caller's): runs use every core. Training
        # keeps JAX's one CPU device, so that its float32 sums do not depend on the machine.
        from alta.devices import one_device_per_core

        one_device_per_core()
    try:
        return _HANDLERS[command](args)
    except AltaError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("jax", "jaxlib", "flax", "optax",
                                                   "safetensors"):
            print(f"alta: error: this command needs {exc.name.split('.')[0]}, part of the "
                  "'model' extra: pip install 'alta[model]'", file=sys.stderr)
            return EXIT_ERROR
        raise
    except Exception as exc:  # an ALTA bug, not a user error: say so briefly
        if os.environ.get("ALTA_DEBUG"):
            raise
        print(f"alta: internal error: {type(exc).__name__}: {exc}\n"
              "(this is a bug in ALTA; run again with ALTA_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


# ---- stages the commands share ---------------------------------------------------------------

def _is_checkpoint(path: str) -> bool:
    return path.endswith(".safetensors")


def _params(args) -> dict[str, str]:
    """The parameter values of --set NAME=VALUE options (the checker converts and checks
    them against the program's `param` declarations)."""
    params: dict[str, str] = {}
    for option in getattr(args, "sets", None) or ():
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not value.strip():
            raise AltaError.at(f"--set expects NAME=VALUE (e.g. --set MAX_LENGTH=100), got "
                               f"{option!r}")
        if name in params:
            raise AltaError.at(f"--set {name} is given twice")
        params[name] = value
    return params


def _titled(program) -> str:
    """The program's name, with its parameters' values if it has any."""
    from alta.files import show_params

    params = f" ({show_params(dict(program.params))})" if program.params else ""
    return program.name + params


def _load_program(path: str, params: dict | None = None):
    """A checked program, its parameters set to `params` (its warnings on stderr)."""
    from alta.checker import check_file

    if _is_checkpoint(path):
        raise AltaError.at(f"{path} is a compiled checkpoint, and this command needs the .alta "
                           "program (run, verify, test, inspect and plot take checkpoints)")
    program = check_file(path, params)
    for w in program.warnings:
        print(w.format(), file=sys.stderr)
    return program


def _compile(path: str, max_length: int | None = None, params: dict | None = None):
    """A .alta program compiled in memory (its warnings and the compiler's on stderr)."""
    from alta.compiler import compile_program

    compiled = compile_program(_load_program(path, params), max_length=max_length)
    for w in compiled.report.warnings:
        print(f"{path}: warning: {w}", file=sys.stderr)
    return compiled


def _load_compiled(path: str, max_length: int | None = None, params: dict | None = None):
    """A compiled program from a checkpoint (with the parameter values it was compiled
    with), or compiled in memory from a .alta file."""
    if _is_checkpoint(path):
        from alta.checkpoint import load_checkpoint
        from alta.files import show_params

        compiled = load_checkpoint(path)
        if params:
            raise AltaError.at(f"--set applies to .alta programs: {path} was compiled with "
                               f"parameters {show_params(dict(compiled.program.params))}, "
                               "which are part of its weights (compile the program again "
                               "with --set)")
        return compiled
    return _compile(path, max_length, params)


def _inputs(args, program=None) -> list[str]:
    """The inputs a command runs on. Without `program` (`alta run`): those given, the INPUT
    strings and then the lines of --inputs PATH ('-': standard input). With it, the command
    samples --samples inputs for the program (by its task module's sampler where it has
    one): `alta coverage` with sizes from --lengths A..B, drawn as `alta trace` draws them;
    `alta verify` up to --max-length, unless it is given --inputs PATH."""
    if program is None:
        return _given_inputs(args)
    from alta.sampling import draw_inputs
    from alta.tasks import find_task, task_path

    if "lengths" in vars(args):
        from alta.traces import TraceSettings, shard_inputs

        settings = TraceSettings(samples=args.samples, seed=args.seed,
                                 lengths=_lengths(args.lengths), shard_size=args.samples)
        return shard_inputs(program, find_task(program), settings, 0)
    task = find_task(program)
    if args.inputs_file:
        return _given_inputs(args, stdin=False)  # verify's --inputs names a file, even '-'
    if task is not None:  # the program's own sampler: well-formed inputs for its task
        print(f"sampling with {task.path.name}: up to "
              f"{args.max_length or task.size} {task.unit}", file=sys.stderr)
    else:
        print(f"sampling uniform vocabulary tokens (no task module at "
              f"{task_path(program)})", file=sys.stderr)
    return draw_inputs(program, task, args.samples, args.max_length, seed=args.seed)


def _input_stream(args):
    """`alta run`'s inputs, read lazily: the INPUT strings, then the lines of --inputs PATH
    ('-': standard input); none at all is an error unless a file was given."""
    texts = list(args.inputs)
    if not texts and not args.inputs_file:
        raise AltaError.at("no inputs: give INPUT strings after the program, or --inputs PATH "
                           "(use \"\" for the empty input)")
    if not args.inputs_file:
        return iter(texts)
    if args.inputs_file == "-":
        lines = sys.stdin
    else:
        try:
            lines = open(args.inputs_file, encoding="utf-8")  # noqa: SIM115 (read lazily)
        except FileNotFoundError:
            raise AltaError.at(f"no such inputs file: {args.inputs_file}") from None
        except OSError as exc:
            raise AltaError.at(f"cannot read inputs file {args.inputs_file}: {exc}") from None
    return itertools.chain(texts, _lines(lines, args.inputs_file))


def _lines(lines, name: str):
    try:
        with lines if lines is not sys.stdin else contextlib.nullcontext():
            for line in lines:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise AltaError.at(f"cannot read inputs file {name}: {exc}") from None


def _nonempty(texts):
    """`texts` (an iterator), or None if it has nothing."""
    first = next(texts, None)
    return None if first is None else itertools.chain([first], texts)


def _given_inputs(args, stdin: bool = True) -> list[str]:
    """The INPUT strings, then the lines of --inputs PATH (with `stdin`, '-' is standard
    input); none at all is an error unless a file was given."""
    texts = list(getattr(args, "inputs", ()))
    if args.inputs_file:
        if stdin and args.inputs_file == "-":
            texts.extend(line.rstrip("\r\n") for line in sys.stdin)
        else:
            texts.extend(read_text(args.inputs_file, "inputs file").splitlines())
    if not texts and not args.inputs_file:
        raise AltaError.at("no inputs: give INPUT strings after the program, or --inputs PATH "
                           "(use \"\" for the empty input)")
    return texts


def _lengths(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    low, sep, high = text.partition("..")
    try:
        a, b = int(low), int(high if sep else low)
    except ValueError:
        raise AltaError.at(f"--lengths expects A..B (e.g. 1..8), got {text!r}") from None
    if not 0 <= a <= b:
        raise AltaError.at(f"--lengths {text}: expected 0 <= A <= B")
    return a, b


def _check_writable(*paths: str | None) -> None:
    """Fail now, not after long work, if an output's folder does not exist."""
    from pathlib import Path

    for path in paths:
        if path is not None and not Path(path).parent.is_dir():
            raise AltaError.at(f"cannot write {path}: no such directory {Path(path).parent}")


def _program_of_dataset(manifest: dict, directory):
    """The program a dataset in `directory` was traced from: its embedded source (with the
    file it came from, where found, for the task module beside it), else the recorded
    file, unchanged since."""
    from pathlib import Path

    from alta.checker import check_source
    from alta.files import check_provenance, find_source, manifest_params, source_hash

    found = find_source(manifest, Path(directory))
    if "source" in manifest and source_hash(manifest["source"]) == manifest["source_sha256"]:
        return check_source(manifest["source"], str(found or manifest["source_path"]),
                            manifest_params(manifest))
    if found is None:
        raise AltaError.at(f"cannot find the program {directory} was traced from: no file at "
                           f"{manifest['source_path']!r} or where its manifest records it")
    program = _load_program(str(found), manifest_params(manifest))
    check_provenance(manifest, program, "the dataset was traced",
                     changed=f"{found} has changed since the dataset was traced; trace it "
                             "again")
    return program


# ---- check, compile, inspect -------------------------------------------------------------------

def _cmd_check(args) -> int:
    # The compiler's static stages find what the checker alone cannot (a write out of range,
    # a table index out of range or a division by zero on some path of the MLP, a position
    # initialiser without max_length): `alta check` reports everything `alta compile` would.
    # The compiler needs numpy only: checking never imports JAX.
    from alta.reports import format_check

    compiled = _compile(args.file, params=_params(args))
    if not args.quiet:
        print(format_check(compiled.program, compiled.report))
    return EXIT_OK


def _cmd_compile(args) -> int:
    from alta.checkpoint import save_checkpoint
    from alta.reports import format_report

    if _is_checkpoint(args.file):
        raise AltaError.at(f"{args.file} is already compiled; give a .alta program")
    if not args.output.endswith(".safetensors"):
        raise AltaError.at(f"the output should be a .safetensors file, got {args.output}")
    compiled = _load_compiled(args.file, args.max_length, _params(args))
    save_checkpoint(compiled, args.output)
    print(f"compiled {_titled(compiled.program)} -> {args.output}")
    print(format_report(compiled.report))
    return EXIT_OK


def _cmd_inspect(args) -> int:
    from alta.compiler.rules import compile_rules
    from alta.reports import format_inspect

    compiled = _load_compiled(args.file, params=_params(args))
    rules = compiled.rules or compile_rules(compiled.program)
    print(format_inspect(compiled, rules, args.rules, _fault_rules(compiled, rules)))
    return EXIT_OK


def _fault_rules(compiled, rules):
    """The fault detector's program and rules, if the model has one."""
    if not compiled.faults:
        return None
    from alta.compiler.faults import fault_rules, plan_faults
    from alta.compiler.values import reachable_values

    plan = plan_faults(compiled.program)
    checks = rules.faults or tuple(fault_rules(plan, reachable_values(compiled.program)))
    return plan.program, checks


# ---- run and verify ----------------------------------------------------------------------------

def _cmd_run(args) -> int:
    compiled_backend = _run_backend(args)
    texts = _input_stream(args)
    if args.trace:  # one input, the interpreter's whole trace
        texts = list(texts)
        if len(texts) != 1:
            raise AltaError.at(f"--trace shows one input; got {len(texts)}")
        from alta.reports import format_trace

        if compiled_backend:  # the Transformer's residual, decoded layer by layer
            from alta.compiled import decoded_trace

            compiled = _load_compiled(args.file, params=_params(args))
            program = compiled.program
            result = decoded_trace(compiled, texts, args.max_layers, _compiled_model(args,
                                                                                    compiled))
            print("(the compiled model's residual stream, decoded; '-': its selection heads "
                  "say undefined)" + (f" with the learned MLP {args.mlp}" if args.mlp else ""))
        else:
            from alta.interpreter import run

            program = _load_program(args.file, _params(args))
            result = run(program, texts, max_layers=args.max_layers, trace=True)
        print(format_trace(program, result))
        return _print_outputs(program, [list(zip(texts, result.outputs, result.halted))],
                              args.max_layers)
    program, results = (_run_compiled if compiled_backend else _run_interpreter)(args, texts)
    return _print_outputs(program, results, args.max_layers)


def _run_backend(args) -> bool:
    """Whether `alta run` runs the compiled model, once its options are known to agree."""
    if args.max_layers is not None and args.max_layers < 0:
        raise AltaError.at("--max-layers must be a non-negative integer")
    compiled_backend = _is_checkpoint(args.file) or args.backend == "compiled" or bool(args.mlp)
    if args.mlp and args.backend == "interpreter":
        raise AltaError.at("--mlp runs the Transformer with a learned MLP: compiled backend only")
    if args.allow_undefined and not compiled_backend:
        raise AltaError.at("--allow-undefined runs the compiled model past undefined reads (the "
                           "interpreter has no value for them): add --backend compiled")
    if _is_checkpoint(args.file) and args.backend == "interpreter":
        raise AltaError.at("a compiled checkpoint runs on the compiled backend; give the .alta "
                           "program to use the interpreter")
    return compiled_backend


def _run_compiled(args, texts):
    """The program and the compiled model's results, window by window: (input, output,
    halted) per input; where --allow-undefined runs past an undefined read, a warning for
    each on stderr as its window is printed."""
    from alta.compiled import run_many

    compiled = _load_compiled(args.file, params=_params(args))
    program = compiled.program
    texts = _nonempty(texts)
    if texts is None:  # no inputs (an empty --inputs file): no model to build
        return program, ()
    model = _compiled_model(args, compiled, stored=True)
    windows = run_many(compiled, texts, max_layers=args.max_layers, model=model,
                       undefined="continue" if args.allow_undefined else "error")

    def results():
        for window in windows:
            for outcome in window:
                if outcome.fault is not None:
                    site = compiled.faults[outcome.fault.site]
                    same = compiled.program.head(site.head).same
                    print(Diagnostic("warning", f"{undefined_read(site.head, same)}, at position "
                                                f"{outcome.fault.position} of input "
                                                f"{outcome.text!r} (printed anyway: "
                                                "--allow-undefined)", site.span,
                                     program.source).format(), file=sys.stderr)
            yield [(o.text, o.output, o.halted or o.fault is not None) for o in window]

    return program, results()


def _compiled_model(args, compiled, stored: bool = False):
    """The Transformer a command runs: with the learned MLP of --mlp, or the dense path
    (--dense), else the structured one; `stored`: its runs kept in the cache for the next
    process (alta.compiled.ModelRunner)."""
    from alta.compiled import ModelRunner, load_model

    if getattr(args, "mlp", None):
        from alta.training import load_mlp, with_learned_mlp

        return with_learned_mlp(compiled, *load_mlp(args.mlp))
    if args.dense:
        return load_model(compiled, structured=False)
    return ModelRunner(compiled, keep=stored)


def _run_interpreter(args, texts):
    """The program and the interpreter's results, window by window."""
    from alta.interpreter import run_many

    program = _load_program(args.file, _params(args))
    return program, run_many(program, texts, max_layers=args.max_layers)


def _print_outputs(program, results, max_layers: int | None) -> int:
    """An output line per input, flushed window by window (an interrupted run keeps what
    it printed); empty for one that did not halt, reported on stderr at the end."""
    status = EXIT_OK
    stuck = []
    for window in results:
        for text, output, halted in window:
            print(output if halted else "")
            if not halted:
                stuck.append(text)
        sys.stdout.flush()
    limit = program.max_layers if max_layers is None else max_layers
    for text in stuck:
        print(f"{program.source.path}: error: input {text!r} did not halt within {limit} "
              "layers (raise --max-layers, or check the halting condition)", file=sys.stderr)
        status = EXIT_ERROR
    return status


def _cmd_verify(args) -> int:
    from alta.reports import format_verify
    from alta.verify import verify

    if args.samples < 1:
        raise AltaError.at("--samples must be at least 1")
    compiled = _load_compiled(args.file, params=_params(args))
    program = compiled.program
    if args.max_length is not None and args.max_length < 0:
        raise AltaError.at("--max-length must be non-negative")
    texts = _inputs(args, program)
    path = (f"the learned MLP {args.mlp}" if args.mlp else
            "dense attention" if args.dense else "structured attention")
    print(f"verifying {_titled(program)} on {len(texts)} inputs ({path}) ...", file=sys.stderr)
    report = verify(compiled, texts, model=_compiled_model(args, compiled),
                    progress=progress_bar("verifying", "inputs"))
    print(format_verify(report, program))
    return EXIT_OK if report.ok else EXIT_ERROR


def _cmd_test(args) -> int:
    from alta.reports import format_test
    from alta.tasks import find_task
    from alta.testing import BACKENDS, test_program

    if args.samples < 0:
        raise AltaError.at("--samples must be non-negative")
    if args.max_length is not None and args.max_length < 0:
        raise AltaError.at("--max-length must be non-negative")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    compiled = _load_compiled(args.file, params=_params(args)) if "compiled" in backends else None
    program = compiled.program if compiled is not None else _load_program(args.file, _params(args))
    test = test_program(program, find_task(program), compiled, samples=args.samples,
                        size=args.max_length, seed=args.seed, backends=backends)
    print(format_test(test))
    return EXIT_OK if test.ok else EXIT_ERROR


# ---- traces, coverage, training ----------------------------------------------------------------

def _cmd_trace(args) -> int:
    from alta.tasks import find_task
    from alta.traces import TraceSettings, write_dataset

    if args.samples < 1 or args.shard_size < 1:
        raise AltaError.at("--samples and --shard-size must be at least 1")
    program = _load_program(args.file, _params(args))
    settings = TraceSettings(samples=args.samples, seed=args.seed, lengths=_lengths(args.lengths),
                             shard_size=args.shard_size, format=args.format,
                             vectors=args.vectors, undefined=args.undefined)
    if args.runner == "beam":
        manifest = _trace_with_beam(program, find_task(program), settings, args)
    elif args.beam_options:
        raise AltaError.at("--beam-option applies to --runner beam only")
    else:
        show = progress_bar(f"tracing {program.name}", "shards")
        manifest = write_dataset(program, find_task(program), settings, args.output,
                                 lambda done, total, rows: show(done, total, f"{rows:,} rows"))
    rows = sum(manifest["counts"]["rows_per_shard"].values())
    print(f"wrote {args.output}: {settings.samples} inputs, {rows:,} rows in "
          f"{settings.shards} {settings.format} shards (schema version "
          f"{manifest['schema_version']}; see manifest.json)")
    return EXIT_OK


def _trace_with_beam(program, task, settings, args) -> dict:
    """`alta trace --runner beam`: the same dataset from an Apache Beam pipeline."""
    import logging

    quiet = not os.environ.get("ALTA_DEBUG")
    if quiet:
        # Beam logs each worker's start-up and a failed element's traceback; the command
        # reports a failure itself, naming the shard. (A root handler, set before Beam is
        # imported, keeps Beam's import-time warnings from installing one on stderr.)
        logging.getLogger().addHandler(logging.NullHandler())
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    from alta.pipelines import beam_options, run_trace_pipeline, runner

    options = beam_options(args.beam_options, quiet=quiet)
    print(f"tracing {program.name}: {settings.shards} shards with Beam's {runner(options)}",
          file=sys.stderr)
    return run_trace_pipeline(program, task, settings, args.output, options)


def _cmd_coverage(args) -> int:
    from alta.compiler.rules import compile_rules
    from alta.reports import format_coverage

    if args.training:
        return _training_coverage(args)
    program = _load_program(args.file, _params(args))
    rules = compile_rules(program).mlp
    coverage, what = (_dataset_coverage if args.dataset else _sampled_coverage)(args, program,
                                                                                rules)
    print(format_coverage(program, rules, coverage, what, args.all))
    return EXIT_OK


def _training_coverage(args) -> int:
    """`alta coverage CONFIG --training`: minimality of an experiment's training set."""
    from alta.compiler.rules import compile_rules
    from alta.experiment import load_config, minimality, study_program, test_sets
    from alta.reports import format_coverage, format_unexercised

    if args.sets or args.lengths:
        raise AltaError.at("--training takes the program, its parameters and the lengths from "
                           "the configuration; drop --set and --lengths")
    config = load_config(args.file, "alta coverage --training")
    program, task = study_program(config)
    rules = compile_rules(program).mlp
    tests = {n: examples.texts for n, (examples, _) in test_sets(config, program, task).items()}
    exercised, novelty = minimality(config, program, task, rules, tests)
    print(format_coverage(program, rules, exercised.coverage,
                          f"the {config.samples:,} training inputs of {args.file}", args.all))
    print(format_unexercised(program, exercised, novelty, task.unit))
    return EXIT_OK


def _dataset_coverage(args, program, rules):
    """Rule coverage on a trace dataset of this very program, and what it is of."""
    from alta.coverage import coverage_of_dataset
    from alta.files import check_provenance
    from alta.traces import read_dataset

    manifest, shards = read_dataset(args.dataset)
    check_provenance(manifest, program, f"{args.dataset} was traced")
    return coverage_of_dataset(program, rules, shards), f"{args.dataset}"


def _sampled_coverage(args, program, rules):
    """Rule coverage on sampled inputs, and what it is of."""
    from alta.coverage import coverage_of_run

    if args.samples < 1:
        raise AltaError.at("--samples must be at least 1")
    coverage = coverage_of_run(program, rules, _inputs(args, program))
    return coverage, f"{args.samples} sampled inputs"


def _cmd_train(args) -> int:
    from alta.compiler.layout import ResidualLayout
    from alta.training import input_noise_scales, load_vectors, save_mlp, train_mlp

    settings = _train_settings(args)
    manifest, x, y = load_vectors(args.dataset)
    program = _program_of_dataset(manifest, args.dataset)  # before training, not after
    scales = input_noise_scales(program, ResidualLayout.from_json(manifest["layout"]),
                                settings.noise_scale)
    _check_writable(args.output, args.plot)
    print(f"training on {len(x):,} vectors of {x.shape[1]} dimensions from {args.dataset}",
          file=sys.stderr)
    show = progress_bar("training", "steps")
    model, curve = train_mlp(x, y, settings,
                             lambda i, loss: show(i, settings.steps, f"loss {loss:.3g}"), scales)
    accuracy = _state_accuracy(program, manifest, model, x, y)
    save_mlp(model, settings, manifest, curve, accuracy, args.output)
    print(f"wrote {args.output}: final loss {curve[-1][1]:.3g}; on its training vectors the "
          f"learned MLP gives the compiled MLP's state on {accuracy:.1%} of rows")
    if args.plot:
        from alta.pictures import plot_curves

        plot_curves({"train loss": curve}, args.plot, ylabel=f"{settings.loss} loss",
                    title=f"alta train: {manifest['program']}")
        print(f"wrote {args.plot}")
    return EXIT_OK


def _train_settings(args):
    from alta.training import TrainSettings

    try:
        hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    except ValueError:
        raise AltaError.at(f"--hidden expects sizes like 256,256, got {args.hidden!r}") from None
    if any(h < 1 for h in hidden) or args.steps < 1 or args.batch_size < 1:
        raise AltaError.at("--hidden sizes, --steps and --batch-size must be positive")
    return TrainSettings(hidden=hidden, activation=args.activation, loss=args.loss,
                         steps=args.steps, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, schedule=args.schedule,
                         input_noise=args.input_noise, noise_scale=args.noise_scale,
                         seed=args.seed)


def _state_accuracy(program, manifest: dict, model, x, y) -> float:
    """How often the learned MLP gives the compiled MLP's state on the dataset's vectors."""
    import numpy as np

    from alta.compiler.layout import ResidualLayout
    from alta.training import state_accuracy

    layout = ResidualLayout.from_json(manifest["layout"])
    return state_accuracy(program, layout, x, np.asarray(model(x)), y)


# ---- experiment and pictures -------------------------------------------------------------------

def _cmd_experiment(args) -> int:
    from pathlib import Path

    from alta.experiment import load_config, run_experiment
    from alta.reports import format_results

    config = load_config(args.config)
    directory = Path(args.output or Path("runs") / Path(args.config).stem)
    results = run_experiment(config, directory,
                             lambda message: print(message, file=sys.stderr, flush=True),
                             progress_bar)
    print(format_results(results, config))
    print(f"wrote {directory}: results.csv, accuracy.png"
          f"{', loss.png' if results.curves else ''}")
    return EXIT_OK


def _cmd_plot(args) -> int:
    from alta.pictures import choose_panels, plot_run

    if _is_checkpoint(args.file) and args.backend == "interpreter":
        raise AltaError.at("a compiled checkpoint is drawn from the compiled backend; give the "
                           ".alta program to draw the interpreter's run")
    compiled = None
    if args.backend == "compiled" or _is_checkpoint(args.file):
        compiled = _load_compiled(args.file, params=_params(args))
        program = compiled.program
    else:
        program = _load_program(args.file, _params(args))
    left_out = choose_panels(program, args.vars)[2]
    plot_run(program, args.input, args.output, layer=args.layer, names=args.vars,
             compiled=compiled)
    print(f"wrote {args.output}")
    if left_out:
        print(f"note: {len(left_out)} panels not drawn ({' '.join(left_out)}); choose them "
              "with --vars", file=sys.stderr)
    return EXIT_OK


def _cmd_export(args) -> int:
    from alta.export import export_torch, require_extra

    if not _is_checkpoint(args.file):
        raise AltaError.at(f"{args.file}: give a compiled .safetensors checkpoint (alta "
                           "compile writes one)")
    if args.to == "torch":
        if args.layers is not None:
            raise AltaError.at("--layers is for --to transformer-lens (the PyTorch model "
                               "loops until it halts, as the compiled one does)")
        directory = export_torch(args.file, args.output, mlp=args.mlp)
    else:
        if args.layers is None or args.layers < 1:
            raise AltaError.at("--to transformer-lens needs --layers N (N >= 1: the ALTA "
                               "layers to unroll)")
        try:
            from alta.lens import export_transformer_lens
        except ImportError:
            raise AltaError.at("transformer-lens export is not available in this version of "
                               "ALTA") from None
        require_extra("torch", "transformer_lens")
        directory = export_transformer_lens(args.file, args.output, args.layers, mlp=args.mlp)
    print(f"wrote {directory}: {args.file} for {args.to}")
    return EXIT_OK


_HANDLERS = {
    "check": _cmd_check,
    "run": _cmd_run,
    "compile": _cmd_compile,
    "verify": _cmd_verify,
    "test": _cmd_test,
    "inspect": _cmd_inspect,
    "trace": _cmd_trace,
    "coverage": _cmd_coverage,
    "train": _cmd_train,
    "experiment": _cmd_experiment,
    "plot": _cmd_plot,
    "export": _cmd_export,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
