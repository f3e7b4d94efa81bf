"""The `alta` command line: argument parsing, and one handler per sub-command that calls
its stages in order (load, choose inputs, run, print); the text it prints is rendered by
`alta.reports`.

Sub-commands import only what they need: checking and interpreting never import JAX.
Every failure a user can cause prints a located message and exits with status 1; no
Python traceback reaches the terminal (set ALTA_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import argparse
import os
import sys

from alta import __version__
from alta.errors import AltaError, Diagnostic, read_text, undefined_read

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    # `alta run FILE --backend compiled "1 0"`: inputs may come after options too.
    if getattr(args, "handler", None) is _cmd_run and not any(e.startswith("-") for e in extra):
        args.inputs = list(args.inputs) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alta",
        description="ALTA: a programming language whose programs are Transformers. Check a "
                    ".alta program, run it with the symbolic interpreter, compile it into the "
                    "weights of a Universal Transformer, and verify that the two agree.",
        epilog="Examples:\n"
               "  alta check programs/parity.alta\n"
               "  alta run programs/parity.alta \"1 0 1 1\"\n"
               "  alta run programs/parity.alta --inputs bits.txt\n"
               "  alta run programs/parity.alta \"1 0 1\" --trace\n"
               "  alta compile programs/parity.alta -o parity.safetensors\n"
               "  alta run parity.safetensors \"1 0 1 1\"\n"
               "  alta verify programs/parity.alta --samples 500 --max-length 200\n"
               "  alta inspect programs/parity.alta\n"
               "  alta trace programs/addition.alta --samples 2000 --lengths 1..8 -o traces/\n"
               "  alta coverage programs/addition.alta --dataset traces/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"alta {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = _command(
        sub, "check", _cmd_check, "the .alta program",
        help="check a program and print a summary of its variables and heads",
        description="Parse and check an ALTA program, and run the compiler's static stages "
                    "on it (rules, layout, weights; no model is built), so that every error "
                    "'alta compile' would report is reported here. Prints a summary "
                    "(vocabulary, framing, variables, heads, halting, output, compiled size) "
                    "and any warnings; on errors prints each with its file, line and column "
                    "and exits with status 1.")
    check.add_argument("--quiet", "-q", action="store_true",
                       help="print only errors and warnings")

    run = _command(
        sub, "run", _cmd_run, "a .alta program or a compiled .safetensors",
        help="run a program (or a compiled model) on inputs",
        description="Run an ALTA program on one or more inputs (all inputs as one batch) and "
                    "print one output line per input, using the program's own tokenisation, "
                    "framing and output declaration. FILE is a .alta program (run by the "
                    "symbolic interpreter, or compiled in memory with --backend compiled) or a "
                    "compiled .safetensors checkpoint (no source needed). An input that does "
                    "not halt within the layer budget is reported on stderr, its output line is "
                    "left empty, and the exit status is 1.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("inputs", metavar="INPUT", nargs="*",
                     help="input strings (quote each one; \"\" is the empty input)")
    run.add_argument("--inputs", dest="inputs_file", metavar="PATH",
                     help="read inputs from a file, one per line ('-' for standard input)")
    run.add_argument("--max-layers", type=int, metavar="N",
                     help="run at most N layers (default: the program's max_layers)")
    run.add_argument("--trace", action="store_true",
                     help="print every variable and head at every position after attention "
                          "and after the MLP of each layer (one input only; interpreter)")
    run.add_argument("--backend", choices=("interpreter", "compiled"), default=None,
                     help="interpreter (default for .alta files) or compiled (the Universal "
                          "Transformer; always for .safetensors files)")
    run.add_argument("--dense", action="store_true",
                     help="compiled backend: multiply through the dense attention matrices "
                          "instead of the structured path (same numbers, slower)")
    run.add_argument("--mlp", metavar="MLP.safetensors",
                     help="compiled backend with this learned MLP (from 'alta train') in place "
                          "of the compiled one")
    run.add_argument("--allow-undefined", action="store_true",
                     help="compiled backend: where the network flags a read of an undefined "
                          "head output (an error by default, as in the interpreter), run on and "
                          "print the raw outputs, with a warning naming the first such read")

    compile_ = _command(
        sub, "compile", _cmd_compile, "the .alta program",
        help="compile a program into Universal Transformer weights",
        description="Compile an ALTA program into the weights of a Universal Transformer and "
                    "save them, with a manifest, as one .safetensors checkpoint. Prints the "
                    "model's size and the compiler's guarantees.")
    compile_.add_argument("-o", "--output", metavar="MODEL", required=True,
                          help="where to write the checkpoint (.safetensors)")
    compile_.add_argument("--max-length", type=int, metavar="N",
                          help="the input length (positions) the attention scales are derived "
                               "for (default: the program's max_length, else 100000)")

    verify = _command(
        sub, "verify", _cmd_verify, "a .alta program or a compiled .safetensors",
        help="check interpreter == compiled model at every layer",
        description="Run the interpreter and the compiled model on sampled inputs and compare "
                    "every variable at every position after every layer (and every head output "
                    "where it is defined, and when each input halts). Exit status 0 only if "
                    "everything agrees; otherwise prints the first divergence.")
    verify.add_argument("--samples", type=int, default=200, metavar="N",
                        help="how many random inputs (default 200)")
    verify.add_argument("--max-length", type=int, metavar="L",
                        help="longest sampled input: in the unit of the program's task module "
                             "(e.g. digits per operand) where it has one, else in words or "
                             "characters (default: the task's size, or 32, or what the "
                             "program's max_length allows)")
    verify.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed")
    verify.add_argument("--inputs", dest="inputs_file", metavar="PATH",
                        help="verify on the inputs in this file (one per line) instead")
    verify.add_argument("--dense", action="store_true",
                        help="verify the dense attention path instead of the structured one")

    inspect = _command(
        sub, "inspect", _cmd_inspect, "a .alta program or a compiled .safetensors",
        help="print the residual layout and the rule table",
        description="Print a compiled program's residual layout (every dimension with its "
                    "variable, value and source line) and its MLP rules with their source lines.")
    inspect.add_argument("--rules", type=int, default=200, metavar="N",
                         help="show at most N rules (default 200; 0 for all)")

    trace = _command(
        sub, "trace", _cmd_trace, "a .alta program",
        help="write execution traces as a dataset (Parquet or JSONL)",
        description="Run the interpreter on sampled inputs and write, per input, layer and "
                    "position, the state after attention and after the MLP (and with --vectors "
                    "the MLP's input and output vectors in the compiled layout) as sharded "
                    "Parquet or JSONL with a manifest. Deterministic for a seed; shards are "
                    "written whole or not at all, and running again with the same settings "
                    "resumes an interrupted run.")
    trace.add_argument("--samples", type=int, default=1000, metavar="N",
                       help="how many inputs (default 1000)")
    trace.add_argument("--lengths", metavar="A..B",
                       help="input sizes, drawn uniformly from A..B per input (in the unit of "
                            "the program's task module, e.g. digits per operand; default: "
                            "the task's size)")
    trace.add_argument("--seed", type=int, default=0, metavar="S")
    trace.add_argument("-o", "--output", required=True, metavar="DIR",
                       help="the dataset directory")
    trace.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    trace.add_argument("--vectors", action="store_true",
                       help="also write the MLP input and output residual vectors")
    trace.add_argument("--undefined", choices=("zero", "noise"), default="zero",
                       help="undefined head outputs in vectors: zero, or noise like what "
                            "attention outputs there (so a trained MLP learns to ignore them)")
    trace.add_argument("--shard-size", type=int, default=256, metavar="N",
                       help="inputs per shard (default 256)")

    coverage = _command(
        sub, "coverage", _cmd_coverage, "a .alta program",
        help="which compiled rules fire on a set of inputs",
        description="Count how often each compiled MLP rule fires (at any layer and position) "
                    "on sampled inputs or on a trace dataset, and list the rules that never "
                    "fire with their source lines: behaviour that data does not exercise.")
    group = coverage.add_mutually_exclusive_group(required=True)
    group.add_argument("--samples", type=int, metavar="N", help="sample N inputs")
    group.add_argument("--dataset", metavar="DIR", help="a dataset written by 'alta trace'")
    coverage.add_argument("--lengths", metavar="A..B", help="input sizes, as for 'alta trace'")
    coverage.add_argument("--seed", type=int, default=0, metavar="S")
    coverage.add_argument("--all", action="store_true", help="list every rule with its count")

    train = _command(
        sub, "train", _cmd_train, ("dataset", "DIR", "a dataset from 'alta trace --vectors'"),
        help="fit an MLP to a trace dataset's vectors",
        description="Fit an ordinary MLP (Flax NNX, Adam) that maps the MLP input vectors of a "
                    "trace dataset (written with 'alta trace --vectors') to the compiled MLP's "
                    "outputs, and save it with a manifest. 'alta run PROGRAM --mlp FILE' runs "
                    "the Transformer with it in place of the compiled MLP.")
    train.add_argument("-o", "--output", required=True, metavar="MLP.safetensors")
    train.add_argument("--hidden", default="256,256", metavar="N,N,...",
                       help="hidden layer sizes (default 256,256)")
    train.add_argument("--activation", choices=("relu", "gelu", "clipped_relu"),
                       default="relu")
    train.add_argument("--loss", choices=("mse", "l1", "huber"), default="mse")
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                       help="learning rate: constant, or decayed to zero over the steps")
    train.add_argument("--input-noise", type=float, default=0.05, metavar="STD",
                       help="Gaussian noise added to the inputs at every step, with targets "
                            "that reach the clean next state, so that the MLP corrects small "
                            "errors instead of letting them add up over layers (default 0.05)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--plot", metavar="PNG", help="also draw the loss curve here")

    experiment = _command(
        sub, "experiment", _cmd_experiment, ("config", "CONFIG", "the experiment's .toml file"),
        help="the trace-supervision study: accuracy by input length",
        description="For a program and its task module, score by input length (up to several "
                    "times the training length) the compiled Transformer, the same Transformer "
                    "with an MLP trained on execution traces, and the same Transformer trained "
                    "end to end on input/output pairs. Settings come from a TOML (or JSON) "
                    "file (see experiments/); writes results.csv, accuracy.png, loss.png, the "
                    "trace dataset and the trained weights into DIR, and prints the table.")
    experiment.add_argument("-o", "--output", metavar="DIR",
                            help="where to write the results (default: runs/NAME, NAME the "
                                 "configuration file's name)")

    plot = _command(
        sub, "plot", _cmd_plot, "a .alta program",
        help="draw one input's run: variables across layers, heads' attention",
        description="Draw, for one input, every variable at every position after every layer "
                    "(the interpreter's run), and each head's attention pattern (which "
                    "positions each position selects) at one layer, as a PNG.")
    plot.add_argument("input", metavar="INPUT", help="the input string")
    plot.add_argument("-o", "--output", required=True, metavar="OUT.png")
    plot.add_argument("--layer", type=int, default=1,
                      help="the layer whose attention patterns are drawn (default 1)")
    return parser


def _command(sub, name: str, handler, first: str | tuple[str, str, str], **options):
    """The parser of sub-command `name`, which runs `handler`; `first` is its positional
    argument: (dest, metavar, help), or only the help of a FILE."""
    parser = sub.add_parser(name, **options)
    dest, metavar, help_ = ("file", "FILE", first) if isinstance(first, str) else first
    parser.add_argument(dest, metavar=metavar, help=help_)
    parser.set_defaults(handler=handler)
    return parser


# ---- stages the commands share ---------------------------------------------------------------

def _is_checkpoint(path: str) -> bool:
    return path.endswith(".safetensors")


def _load_program(path: str):
    """A checked program (its warnings on stderr)."""
    from alta.checker import check_file

    program = check_file(path)
    for w in program.warnings:
        print(w.format(), file=sys.stderr)
    return program


def _compile(path: str, max_length: int | None = None):
    """A .alta program compiled in memory (its warnings and the compiler's on stderr)."""
    from alta.compiler import compile_program

    compiled = compile_program(_load_program(path), max_length=max_length)
    for w in compiled.report.warnings:
        print(f"{path}: warning: {w}", file=sys.stderr)
    return compiled


def _load_compiled(path: str, max_length: int | None = None):
    """A compiled program from a checkpoint, or compiled in memory from a .alta file."""
    if _is_checkpoint(path):
        from alta.checkpoint import load_checkpoint

        return load_checkpoint(path)
    return _compile(path, max_length)


def _inputs(args, program=None) -> list[str]:
    """The inputs a command runs on. Without `program` (`alta run`): those given, the INPUT
    strings and then the lines of --inputs PATH ('-': standard input). With it, the command
    samples --samples inputs for the program (by its task module's sampler where it has
    one): `alta coverage` with sizes from --lengths A..B, drawn as `alta trace` draws them;
    `alta verify` up to --max-length, unless it is given --inputs PATH."""
    if program is None:
        return _given_inputs(args)
    from alta.sampling import draw_inputs
    from alta.tasks import find_task

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
    return draw_inputs(program, task, args.samples, args.max_length, seed=args.seed)


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


def _program_of_dataset(manifest: dict):
    """The program a dataset was traced from (its recorded source file, unchanged)."""
    from alta.files import check_provenance

    program = _load_program(manifest["source_path"])
    check_provenance(manifest, program, f"{manifest['source_path']} has changed since the "
                                        "dataset was traced; trace it again")
    return program


def _progress(label: str, unit: str):
    """A progress bar on stderr, `show(done, total, note)`, redrawn in place on a terminal
    (a line per update otherwise, so logs stay readable)."""
    tty = sys.stderr.isatty()
    shown = set()

    def show(done: int, total: int, note: str = "") -> None:
        tenth = 10 * done // total
        if not tty and tenth in shown:  # in a log: a line per tenth of the way
            return
        shown.add(tenth)
        width = 24
        filled = width * done // total
        start, end = ("\r", "\n" if done == total else "") if tty else ("", "\n")
        print(f"{start}{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}"
              f"{', ' + note if note else ''}", end=end, file=sys.stderr, flush=True)

    return show


# ---- check, compile, inspect -------------------------------------------------------------------

def _cmd_check(args) -> int:
    # The compiler's static stages find what the checker alone cannot (a write out of range,
    # a table index out of range or a division by zero on some path of the MLP, a position
    # initialiser without max_length): `alta check` reports everything `alta compile` would.
    # The compiler needs numpy only: checking never imports JAX.
    from alta.reports import format_check

    compiled = _compile(args.file)
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
    compiled = _load_compiled(args.file, args.max_length)
    save_checkpoint(compiled, args.output)
    print(f"compiled {compiled.program.name} -> {args.output}")
    print(format_report(compiled.report))
    return EXIT_OK


def _cmd_inspect(args) -> int:
    from alta.compiler.rules import compile_rules
    from alta.reports import format_inspect

    compiled = _load_compiled(args.file)
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
    texts = _inputs(args)
    if args.trace and len(texts) != 1:
        raise AltaError.at(f"--trace shows one input; got {len(texts)}")
    program, result = (_run_compiled if compiled_backend else _run_interpreter)(args, texts)
    if result is None:  # no inputs (an empty --inputs file): nothing to run
        return EXIT_OK
    if args.trace:
        from alta.reports import format_trace

        print(format_trace(program, result))
    return _print_outputs(program, result, texts, args.max_layers)


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
    if compiled_backend and args.trace:
        raise AltaError.at("--trace shows the interpreter's trace; use 'alta verify' to "
                           "compare the compiled model layer by layer")
    return compiled_backend


def _run_compiled(args, texts: list[str]):
    """The program and the compiled model's run (None without inputs); where
    --allow-undefined runs past an undefined read, a warning for each."""
    from alta.compiled import load_model, run_compiled

    compiled = _load_compiled(args.file)
    program = compiled.program
    if not texts:
        return program, None
    if args.mlp:
        from alta.training import load_mlp, with_learned_mlp

        model = with_learned_mlp(compiled, *load_mlp(args.mlp))
    else:
        model = load_model(compiled, structured=not args.dense)
    result = run_compiled(compiled, texts, max_layers=args.max_layers, model=model,
                          undefined="continue" if args.allow_undefined else "error")
    for fault in result.faults:
        site = compiled.faults[fault.site]
        print(Diagnostic("warning", f"{undefined_read(site.head)}, at position "
                                    f"{fault.position} of input {texts[fault.sequence]!r} "
                                    "(printed anyway: --allow-undefined)", site.span,
                         program.source).format(), file=sys.stderr)
    return program, result


def _run_interpreter(args, texts: list[str]):
    """The program and the interpreter's run (None without inputs)."""
    from alta.interpreter import run

    program = _load_program(args.file)
    if not texts:
        return program, None
    return program, run(program, texts, max_layers=args.max_layers, trace=args.trace)


def _print_outputs(program, result, texts: list[str], max_layers: int | None) -> int:
    """An output line per input (empty for one that did not halt, reported on stderr)."""
    status = EXIT_OK
    stuck = set(result.not_halted)
    for b, line in enumerate(result.outputs):
        print("" if b in stuck else line)
    limit = program.max_layers if max_layers is None else max_layers
    for b in sorted(stuck):
        print(f"{program.source.path}: error: input {texts[b]!r} did not halt within {limit} "
              "layers (raise --max-layers, or check the halting condition)", file=sys.stderr)
        status = EXIT_ERROR
    return status


def _cmd_verify(args) -> int:
    from alta.compiled import load_model
    from alta.reports import format_verify
    from alta.verify import verify

    if args.samples < 1:
        raise AltaError.at("--samples must be at least 1")
    compiled = _load_compiled(args.file)
    program = compiled.program
    if args.max_length is not None and args.max_length < 0:
        raise AltaError.at("--max-length must be non-negative")
    texts = _inputs(args, program)
    path = "dense" if args.dense else "structured"
    print(f"verifying {program.name} on {len(texts)} inputs ({path} attention) ...",
          file=sys.stderr)
    report = verify(compiled, texts, model=load_model(compiled, structured=not args.dense))
    print(format_verify(report, program))
    return EXIT_OK if report.ok else EXIT_ERROR


# ---- traces, coverage, training ----------------------------------------------------------------

def _cmd_trace(args) -> int:
    from alta.tasks import find_task
    from alta.traces import TraceSettings, write_dataset

    if args.samples < 1 or args.shard_size < 1:
        raise AltaError.at("--samples and --shard-size must be at least 1")
    program = _load_program(args.file)
    settings = TraceSettings(samples=args.samples, seed=args.seed, lengths=_lengths(args.lengths),
                             shard_size=args.shard_size, format=args.format,
                             vectors=args.vectors, undefined=args.undefined)
    show = _progress(f"tracing {program.name}", "shards")
    manifest = write_dataset(program, find_task(program), settings, args.output,
                             lambda done, total, rows: show(done, total, f"{rows:,} rows"))
    rows = sum(manifest["counts"]["rows_per_shard"].values())
    print(f"wrote {args.output}: {settings.samples} inputs, {rows:,} rows in "
          f"{settings.shards} {settings.format} shards (schema version "
          f"{manifest['schema_version']}; see manifest.json)")
    return EXIT_OK


def _cmd_coverage(args) -> int:
    from alta.compiler.rules import compile_rules
    from alta.reports import format_coverage

    program = _load_program(args.file)
    rules = compile_rules(program).mlp
    coverage, what = (_dataset_coverage if args.dataset else _sampled_coverage)(args, program,
                                                                                rules)
    print(format_coverage(program, rules, coverage, what, args.all))
    return EXIT_OK


def _dataset_coverage(args, program, rules):
    """Rule coverage on a trace dataset of this very program, and what it is of."""
    from alta.coverage import coverage_of_dataset
    from alta.files import check_provenance
    from alta.traces import read_dataset

    manifest, shards = read_dataset(args.dataset)
    check_provenance(manifest, program, f"{args.dataset} was traced from another version of "
                                        f"{manifest['program']} (source hash differs)")
    return coverage_of_dataset(program, rules, shards), f"{args.dataset}"


def _sampled_coverage(args, program, rules):
    """Rule coverage on sampled inputs, and what it is of."""
    from alta.coverage import coverage_of_run

    if args.samples < 1:
        raise AltaError.at("--samples must be at least 1")
    coverage = coverage_of_run(program, rules, _inputs(args, program))
    return coverage, f"{args.samples} sampled inputs"


def _cmd_train(args) -> int:
    from alta.training import load_vectors, save_mlp, train_mlp

    settings = _train_settings(args)
    manifest, x, y = load_vectors(args.dataset)
    print(f"training on {len(x):,} vectors of {x.shape[1]} dimensions from {args.dataset}",
          file=sys.stderr)
    show = _progress("training", "steps")
    model, curve = train_mlp(x, y, settings,
                             lambda i, loss: show(i, settings.steps, f"loss {loss:.3g}"))
    accuracy = _state_accuracy(manifest, model, x, y)
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
                         input_noise=args.input_noise, seed=args.seed)


def _state_accuracy(manifest: dict, model, x, y) -> float:
    """How often the learned MLP gives the compiled MLP's state on the dataset's vectors."""
    import numpy as np

    from alta.compiler.layout import ResidualLayout
    from alta.training import state_accuracy

    program = _program_of_dataset(manifest)
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
                             _progress)
    print(format_results(results, config))
    print(f"wrote {directory}: results.csv, accuracy.png"
          f"{', loss.png' if results.curves else ''}")
    return EXIT_OK


def _cmd_plot(args) -> int:
    from alta.pictures import plot_run

    plot_run(_load_program(args.file), args.input, args.output, layer=args.layer)
    print(f"wrote {args.output}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
