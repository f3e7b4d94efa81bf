"""The `alta` command line.

Sub-commands import only what they need: checking and interpreting never import JAX.
Every failure a user can cause prints a located message and exits with status 1; no
Python traceback reaches the terminal (set ALTA_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import argparse
import os
import sys

from alta import __version__
from alta.errors import AltaError, read_text

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
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
                    ".alta program, or run it with the symbolic interpreter.",
        epilog="Examples:\n"
               "  alta check programs/parity.alta\n"
               "  alta run programs/parity.alta \"1 0 1 1\"\n"
               "  alta run programs/parity.alta --inputs bits.txt\n"
               "  alta run programs/parity.alta \"1 0 1\" --trace",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"alta {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = sub.add_parser(
        "check", help="check a program and print a summary of its variables and heads",
        description="Parse and check an ALTA program. Prints a summary (vocabulary, framing, "
                    "variables, heads, halting, output) and any warnings; on errors prints "
                    "each with its file, line and column and exits with status 1.")
    check.add_argument("file", metavar="FILE", help="the .alta program")
    check.add_argument("--quiet", "-q", action="store_true",
                       help="print only errors and warnings")
    check.set_defaults(handler=_cmd_check)

    run = sub.add_parser(
        "run", help="run a program on inputs with the symbolic interpreter",
        description="Run an ALTA program on one or more inputs with the symbolic interpreter "
                    "(all inputs as one batch) and print one output line per input, using the "
                    "program's own tokenisation, framing and output declaration. An input that "
                    "does not halt within the layer budget is reported on stderr, its output "
                    "line is left empty, and the exit status is 1.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("file", metavar="FILE", help="the .alta program")
    run.add_argument("inputs", metavar="INPUT", nargs="*",
                     help="input strings (quote each one; \"\" is the empty input)")
    run.add_argument("--inputs", dest="inputs_file", metavar="PATH",
                     help="read inputs from a file, one per line ('-' for standard input)")
    run.add_argument("--max-layers", type=int, metavar="N",
                     help="run at most N layers (default: the program's max_layers)")
    run.add_argument("--trace", action="store_true",
                     help="print every variable and head at every position after attention "
                          "and after the MLP of each layer (one input only)")
    run.set_defaults(handler=_cmd_run)
    return parser


# ---- check ---------------------------------------------------------------------------------

def _cmd_check(args) -> int:
    from alta.checker import check_file

    program = check_file(args.file)
    for w in program.warnings:
        print(w.format(), file=sys.stderr)
    if not args.quiet:
        print(summarize(program))
    return EXIT_OK


def summarize(program) -> str:
    from alta import ir

    def framing_words():
        for item in program.framing:
            if item.kind == "token":
                tok = f'"{program.vocab[item.token]}"'
                yield tok if item.count == 1 else f"{tok} * {item.count}"
            else:
                yield item.kind

    lines = [f"program {program.name}  ({program.source.path}): ok",
             f"  vocab      {len(program.vocab)} tokens: {' '.join(program.vocab)}",
             f"  input      {' '.join(framing_words())}"]
    if program.max_length is not None:
        lines.append(f"  max_length {program.max_length}")
    width = max([len(v.name) for v in program.variables] +
                [len(h.name) for h in program.heads] + [4])
    lines.append(f"  variables  ({len(program.variables)})")
    for v in program.variables:
        lines.append(f"    {v.name:<{width}}  {v.type.describe():<24} init from {v.init_from}")
    lines.append(f"  heads      ({len(program.heads)})")
    for h in program.heads:
        sel = ""
        if h.op is not None:
            sel = f" where {h.key} {h.op} {h.query}"
        if h.offsets is not None:
            offs = ", ".join(str(o) for o in h.offsets)
            sel += f" at {{{offs}}}" if len(h.offsets) > 1 else f" at {offs}"
        kind = "mean of" if isinstance(h.type, ir.Numerical) else "reads"
        lines.append(f"    {h.name:<{width}}  {h.type.describe():<24} {kind} {h.value}{sel}")
    lines.append(f"  mlp        {_count_statements(program.mlp)} statements after unrolling")
    halt = "when " + program.source.line(program.halt.span.line).strip().removeprefix(
        "halt when ").strip() if program.halt is not None else "after a fixed number of layers"
    lines.append(f"  halt       {halt} (at most {program.max_layers} layers)")
    out = program.output
    at = "" if out.at == "all" else f" at {out.at}"
    lines.append(f"  output     {out.variable}{at}{' (filtered)' if out.where else ''}")
    return "\n".join(lines)


def _count_statements(stmts) -> int:
    from alta import ir

    total = 0
    for s in stmts:
        total += 1
        if isinstance(s, ir.IfStmt):
            total += _count_statements(s.then) + _count_statements(s.orelse)
    return total


# ---- run -----------------------------------------------------------------------------------

def _read_inputs(args) -> list[str]:
    texts = list(args.inputs)
    if args.inputs_file:
        if args.inputs_file == "-":
            texts.extend(line.rstrip("\r\n") for line in sys.stdin)
        else:
            texts.extend(read_text(args.inputs_file, "inputs file").splitlines())
    if not texts and not args.inputs_file:
        raise AltaError.at("no inputs: give INPUT strings after the program, or --inputs PATH "
                           "(use \"\" for the empty input)")
    return texts


def _cmd_run(args) -> int:
    from alta.checker import check_file
    from alta.interpreter import run

    if args.max_layers is not None and args.max_layers < 0:
        raise AltaError.at("--max-layers must be a non-negative integer")
    program = check_file(args.file)
    for w in program.warnings:
        print(w.format(), file=sys.stderr)
    texts = _read_inputs(args)
    if args.trace and len(texts) != 1:
        raise AltaError.at(f"--trace shows one input; got {len(texts)}")
    if not texts:
        return EXIT_OK
    result = run(program, texts, max_layers=args.max_layers, trace=args.trace)
    if args.trace:
        print(format_trace(program, result))
    status = EXIT_OK
    stuck = set(result.not_halted)
    for b, line in enumerate(result.outputs):
        print("" if b in stuck else line)
    limit = program.max_layers if args.max_layers is None else args.max_layers
    for b in sorted(stuck):
        print(f"{program.source.path}: error: input {texts[b]!r} did not halt within {limit} "
              "layers (raise --max-layers, or check the halting condition)", file=sys.stderr)
        status = EXIT_ERROR
    return status


def format_trace(program, result) -> str:
    """A per-layer table of every variable (and head) at every position, for one input."""
    from alta import ir
    from alta.evaluation import bits_to_set

    length = int(result.batch.lengths[0])
    tokens = [program.vocab[t] for t in result.batch.tokens[0, :length]]

    def row(name, values, undefined=None):
        type_ = program.type_of(name)
        cells = []
        for i in range(length):
            if undefined is not None and undefined[i]:
                cells.append("-")
            elif isinstance(type_, ir.SetValued):
                cells.append(type_.format(bits_to_set(values[i], type_.size)))
            else:
                cells.append(type_.format(values[i]))
        return [name] + cells

    def table(title, rows):
        header = ["position"] + [str(i) for i in range(length)]
        rows = [header, ["token"] + tokens] + rows
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        text = [title]
        for r in rows:
            text.append("  " + "  ".join(cell.rjust(w) if c else cell.ljust(w)
                                         for c, (cell, w) in enumerate(zip(r, widths))))
        return "\n".join(text)

    names = [v.name for v in program.variables]
    blocks = [table("initial state", [row(n, result.initial[n][0]) for n in names])]
    for rec in result.trace or ():
        if not rec.active[0]:
            break
        heads = [row(h.name, rec.after_attention[h.name][0], rec.undefined[h.name][0])
                 for h in program.heads]
        blocks.append(table(f"layer {rec.layer}, after attention ('-': undefined)", heads))
        blocks.append(table(f"layer {rec.layer}, after the MLP",
                            [row(n, rec.after_mlp[n][0]) for n in names]))
    layers = int(result.layers[0])
    status = "halted" if result.halted[0] else "did not halt"
    blocks.append(f"{status} after {layers} layer{'s' if layers != 1 else ''}; output:")
    return "\n\n".join(blocks)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
