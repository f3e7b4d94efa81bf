"""Text renderings: what the `alta` commands print, as strings.

Program summaries (`alta check`), compile reports (`alta compile`, `alta inspect`), trace
tables (`alta run --trace`), the residual layout and rule listing of `alta inspect`, rule
coverage tables (`alta coverage`), verification outcomes (`alta verify`) and the accuracy
table of `alta experiment`. Each function turns a result into text and prints nothing; none
imports JAX (checking and interpreting never do).
"""

from __future__ import annotations

from alta import ir
from alta.files import show_params

# ---- programs ------------------------------------------------------------------------------

def summarize(program: ir.Program) -> str:
    """Vocabulary, framing, variables, heads, MLP size, halting and output of a program."""
    def framing_words():
        allow = ()
        for item in program.framing:
            if item.kind == "token":
                tok = f'"{program.vocab[item.token]}"'
                yield tok if item.count == 1 else f"{tok} * {item.count}"
            else:
                yield item.kind
                allow = item.allow
        if allow:
            yield "allow " + " ".join(f'"{program.vocab[t]}"' for t in allow)

    lines = [f"program {program.name}  ({program.source.path}): ok",
             f"  vocab      {len(program.vocab)} tokens: {' '.join(program.vocab)}",
             f"  input      {' '.join(framing_words())}"]
    if program.params:
        lines.append(f"  params     {show_params(dict(program.params))}")
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
        if h.where:
            within = "and" if len(h.where) > 1 else None
            sel = " where " + " and ".join(_selection_words(program, t.test, within)
                                           for t in h.where)
        if h.offsets is not None:
            sel += f" at {_offsets(h.offsets)}"
        if h.counts:
            what = f"{'count 0..' + str(h.type.size - 1):<24} counts positions{sel}"
        else:
            kind = "mean of" if isinstance(h.type, ir.Numerical) else "reads"
            what = f"{h.type.describe():<24} {kind} {h.value}{sel}"
        lines.append(f"    {h.name:<{width}}  {what}")
    statements = sum(isinstance(node, ir.Stmt) for node in ir.walk(program.mlp))
    lines.append(f"  mlp        {statements} statements after unrolling")
    halt = "when " + program.source.line(program.halt.span.line).strip().removeprefix(
        "halt when ").strip() if program.halt is not None else "after a fixed number of layers"
    lines.append(f"  halt       {halt} (at most {program.max_layers} layers)")
    out = program.output
    at = "" if out.at == "all" else f" at {out.at}"
    lines.append(f"  output     {out.variable}{at}{' (filtered)' if out.where else ''}")
    return "\n".join(lines)


def format_check(program: ir.Program, report) -> str:
    """`alta check`: the summary and the size the program compiles to."""
    return (f"{summarize(program)}\n"
            f"  compiles   D {report.width}, {report.rules:,} rules, "
            f"{report.parameters:,} parameters")


def _selection_words(program: ir.Program, selection: ir.Selection,
                     within: str | None = None) -> str:
    """A head's tests as written (parenthesised where `within` binds tighter), constants as
    the key's values print (tokens quoted, enum members by name)."""
    if isinstance(selection, ir.KeyTest):
        if selection.query is not None:
            return f"{selection.key} {selection.op} {selection.query}"
        key = program.variable(selection.key).type
        quote = '"' if key.labels is not None and key.labels == program.vocab else ""
        words = [f"{quote}{key.format(v)}{quote}" for v in sorted(
            selection.constant if isinstance(selection.constant, frozenset)
            else {selection.constant})]
        shown = "{" + ", ".join(words) + "}" if isinstance(selection.constant, frozenset) \
            else words[0]
        return f"{selection.key} {selection.op} {shown}"
    if isinstance(selection, ir.NotTest):
        return "not " + _selection_words(program, selection.operand, "not")
    words = f" {selection.op} ".join(_selection_words(program, s, selection.op)
                                     for s in selection.operands)
    return words if within in (None, selection.op) else f"({words})"


def _offsets(offsets) -> str:
    """`-1`, `-3..-1`, or `{-2, 1}`: a run of consecutive offsets as a range."""
    ordered = sorted(offsets)
    if len(ordered) == 1:
        return str(ordered[0])
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}..{ordered[-1]}"
    return "{" + ", ".join(map(str, ordered)) + "}"


# ---- compiled models -------------------------------------------------------------------------

def format_report(report) -> str:
    """A compile report: widths, rules, the fault detector, parameters, scales, guarantees."""
    e1, e2, r = report.mlp_widths
    scales = ", ".join(f"{s.name} {s.beta:.1f}" for s in report.head_scales) or "none"
    return "\n".join([
        (f"  residual width D   {report.width} (program {report.program_width} + fault detector "
         f"{report.width - report.program_width})"),
        f"  heads              {report.heads}",
        f"  MLP widths         {e1}, {e2}, {r} (expansion, expansion, rule units)",
        (f"  rules              {report.rules} (from {report.unminimised_rules} paths before "
         f"minimisation; {report.atoms_per_rule:.1f} atoms per rule) + {report.reset_units} "
         "head resets" + (f" + {report.copy_units} copy units" if report.copy_units
                          else "")),
        f"  halting rules      {report.halting_rules}",
        (f"  fault detector     {report.fault_rules} rules + {report.fault_resets} resets, "
         f"{report.fault_resets} selection heads (undefined head reads stop the run)"),
        f"  parameters         {report.parameters:,}",
        f"  attention scales   {scales}",
        f"  exact up to        {report.guaranteed_length:,} positions",
    ] + [f"  warning: {w}" for w in report.warnings])


def format_inspect(compiled, rules, limit: int, faults=None) -> str:
    """`alta inspect`: the residual layout, the compile report, then at most `limit` (0: all)
    of the MLP rules, the halting rules and, with `faults` (the fault detector's program and
    rules), the fault detector's sites and rules."""
    program = compiled.program
    lines = [f"program {program.name}: residual layout ({compiled.layout.width} dimensions)",
             f"  {'dims':>11}  {'name':<16} {'kind':<12} {'line':>4}  values"]
    for b in compiled.layout.blocks:
        dims = f"{b.start}" if b.size == 1 else f"{b.start}-{b.stop - 1}"
        kind = b.kind + (" head" if b.is_head else "")
        shown = " ".join(b.labels[:12]) + (" ..." if b.size > 12 else "")
        lines.append(f"  {dims:>11}  {b.name:<16} {kind:<12} {b.line:>4}  {shown}")
    lines += ["", format_report(compiled.report), ""]
    limit = limit or len(rules.mlp)
    lines.append(f"MLP rules ({len(rules.mlp)}; each is one hidden unit of the rule layer):")
    for i, rule in enumerate(rules.mlp[:limit]):
        numbers = ",".join(str(n) for n in rule.lines)
        lines.append(f"  {i:>5}  line {numbers:<8} {rule.describe(program)}")
    if len(rules.mlp) > limit:
        lines.append(f"  ... {len(rules.mlp) - limit} more (--rules 0 shows all)")
    if rules.halting:
        lines.append(f"halting rules ({len(rules.halting)}):")
        lines += _numbered(rules.halting[:limit], program)
    if faults is not None:
        detector, checks = faults
        lines.append(f"fault detector: {len(compiled.faults)} head reads checked, {len(checks)} "
                     "rules (a flag stops the run with the interpreter's undefined-read error):")
        for site in compiled.faults:
            lines.append(f"  {site.name:<9} line {site.span.line}:{site.span.column:<5} reads "
                         f"'{site.head}'")
        lines += _numbered(checks[:limit], detector)
    return "\n".join(lines)


def _numbered(rules, program) -> list[str]:
    return [f"  {i:>5}  line {rule.lines[0]:<8} {rule.describe(program)}"
            for i, rule in enumerate(rules)]


def format_verify(report, program: ir.Program) -> str:
    """`alta verify`: agreement, or the first divergence with its source line."""
    if report.ok:
        return (f"ok: interpreter and compiled model agree on {report.inputs} inputs, "
                f"{report.layers} layers, {report.comparisons:,} values compared")
    text = report.divergence.format(program.source.path)
    line = program.source.line(report.divergence.line).strip()
    return f"{text}\n    {line}" if line else text


# ---- runs ----------------------------------------------------------------------------------

def format_trace(program: ir.Program, result) -> str:
    """A per-layer table of every variable (and head) at every position, for one input."""
    from alta.semantics import bits_to_set

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


def format_coverage(program: ir.Program, rules, coverage, what: str, show_all: bool) -> str:
    """`alta coverage`: how many rules fire on `what`, then the rules that never fire (or,
    with `show_all`, every rule) with their counts and source lines."""
    fired = len(rules) - len(coverage.uncovered)
    lines = [(f"{program.name}: {fired} of {len(rules)} rules fire on {what} "
              f"({coverage.positions:,} positions x layers)")]
    shown = range(len(rules)) if show_all else coverage.uncovered
    if shown:
        lines.append("rules that never fire:" if not show_all else
                     "rules, with how often each fires:")
    for i in shown:
        rule = rules[i]
        numbers = ",".join(str(n) for n in rule.lines)
        lines.append(f"  {i:>5}  {coverage.hits[i]:>9,}  line {numbers:<8} "
                     f"{rule.describe(program)}")
    return "\n".join(lines)


def format_unexercised(program: ir.Program, exercised, novelty: dict, unit: str) -> str:
    """`alta coverage --training`: the values each name never takes on the training traces,
    then per test length the share of inputs needing an unexercised rule, value, or either."""
    missing = exercised.unexercised_values(program)
    lines = ["values the training traces never show:" if missing else
             "the training traces show every value each variable and head can take"]
    for name, values in missing.items():
        shown = ", ".join(program.type_of(name).format(v) for v in values[:12])
        more = f", ... ({len(values)} in all)" if len(values) > 12 else ""
        declared = program.variable_index.get(name) or program.head(name)
        lines.append(f"  {name} (line {declared.span.line}): {shown}{more}")
    lines.append(f"test inputs that need an unexercised rule / value / either, by length in "
                 f"{unit}:")
    for length, n in novelty.items():
        lines.append(f"  {length:>6}  {n.rule.mean():>5.0%}  {n.value.mean():>5.0%}  "
                     f"{n.either.mean():>5.0%}")
    return "\n".join(lines)


def format_results(results, config) -> str:
    """`alta experiment`: accuracy by length (rows) and method (columns), then minimality:
    the share of inputs that need a rule or value the training traces never exercise, and
    the trace-trained MLP's accuracy on those inputs and on the rest."""
    from alta.experiment import METHOD_NAMES, minimality_rows

    scores = results.scores
    methods = [m for m in config.methods if any(s.method == m for s in scores)]
    width = max(len(METHOD_NAMES[m]) for m in methods) + 2
    by = {(s.method, s.length): s for s in scores}
    novel = {row[0]: row for row in minimality_rows(results)}
    extra = ("  unexercised", "  trace on those", "  trace on the rest") if novel else ()
    top = config.train_lengths[1]
    lines = [f"{'length':>8}" + "".join(f"{METHOD_NAMES[m]:>{width}}" for m in methods)
             + "".join(extra)]
    for length in config.test_lengths:
        row = f"{length:>8}" + "".join(f"{by[m, length].accuracy:>{width}.1%}" for m in methods)
        if novel:
            row += "".join(f"{cell:>{len(head)}}" for cell, head in
                           zip(_minimality_cells(novel[length]), extra))
        if length > top:
            row += f"   {length / top:.3g}x the longest training input" if top else ""
        lines.append(row)
    lines.append(f"(accuracy on {config.test_samples} inputs per length in {results.unit}; trained "
                 f"on {config.train_lengths[0]}..{top}" + (
                     f"; unexercised: inputs that need a rule ({results.unexercised_rules} never "
                     "fire on the training traces) or a value those traces never show)"
                     if novel else ")"))
    return "\n".join(lines)


def _minimality_cells(row) -> tuple[str, str, str]:
    """A minimality row's share of inputs needing what training never exercised, and the
    trace-trained MLP's accuracy on those and on the rest ("-": no such input, or no trace
    method)."""
    _, samples, _, _, needing, _, right_needing, right_rest = row

    def share(part, whole):
        return "-" if part is None or not whole else f"{part / whole:.0%}"

    return (f"{needing / samples:.0%}", share(right_needing, needing),
            share(right_rest, samples - needing))


# ---- alta test -----------------------------------------------------------------------------

def format_test(test, shown: int = 5) -> str:
    """Scores per back end, then the first `shown` failing cases with what each back end
    printed."""
    program, task = test.program, test.task
    lines = [f"testing {program.name} ({program.source.path}): {len(test.examples)} examples"
             + (f", {len(test.sampled)} inputs from {task.path.name} (up to {test.size} "
                f"{task.unit})" if task is not None else
                ", no task module beside it (NAME.py with sample and oracle)")]
    backends = list(dict.fromkeys(o.backend for o in test.outcomes))
    for backend in backends:
        parts = []
        for what, cases in (("examples", test.examples), ("oracle", test.sampled)):
            if cases:
                passed, ran = test.score(backend, cases)
                parts.append(f"{what} {passed}/{ran}")
        lines.append(f"  {backend:<12} {'   '.join(parts) or 'nothing to test'}")
    failing = list(dict.fromkeys(o.case for o in test.outcomes if not o.ok))
    if not failing:
        lines.append("ok" if test.outcomes else "nothing to test: add '# example:' lines or "
                                                 "a task module")
        return "\n".join(lines)
    lines.append(f"FAILED: {len(failing)} of {len(test.examples) + len(test.sampled)} cases")
    for case in failing[:shown]:
        lines.append(f"  {case.origin}: {case.text!r}")
        lines.append(f"    {'expected':<12} {case.expected}")
        for o in test.outcomes:
            if o.case == case:
                got = o.output if o.error is None else f"error: {o.error}"
                lines.append(f"    {o.backend:<12} {got}{'' if o.ok else '   <- differs'}")
    if len(failing) > shown:
        lines.append(f"  ... and {len(failing) - shown} more")
    return "\n".join(lines)
