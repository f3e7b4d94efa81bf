"""The `alta` command's arguments: every sub-command's options, help and examples.

Declarations only (argparse); alta.cli maps each sub-command to its handler.
"""

from __future__ import annotations

import argparse

from alta import __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command; `args.command` names the one chosen."""
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
               "  alta test programs/parity.alta\n"
               "  alta inspect programs/parity.alta\n"
               "  alta trace programs/addition.alta --samples 2000 --lengths 1..8 -o traces/\n"
               "  alta coverage programs/addition.alta --dataset traces/\n"
               "  alta export parity.safetensors --to torch -o parity_torch/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"alta {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = _command(
        sub, "check", "the .alta program",
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
        sub, "run", "a .alta program or a compiled .safetensors",
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
                          "and after the MLP of each layer (one input only); on the compiled "
                          "backend (and with --mlp), decoded from the residual stream")
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
        sub, "compile", "the .alta program",
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
        sub, "verify", "a .alta program or a compiled .safetensors",
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
    verify.add_argument("--mlp", metavar="MLP.safetensors",
                        help="verify the Transformer with this learned MLP (from 'alta train') "
                             "in place of the compiled one: where its run first leaves the "
                             "interpreter's")

    test = _command(
        sub, "test", "a .alta program (or a compiled .safetensors)",
        help="check a program against its examples and its task module's oracle",
        description="Run the program's '# example: \"INPUT\" -> OUTPUT' comment lines and, "
                    "where a task module NAME.py lies beside NAME.alta, its oracle on inputs "
                    "drawn by its sampler, on the interpreter and on the compiled Transformer. "
                    "Prints the scores and the first failures (expected vs what each back end "
                    "printed); exit status 0 only if every case passes on every back end.")
    test.add_argument("--samples", type=int, default=200, metavar="N",
                      help="how many inputs to draw for the oracle (default 200)")
    test.add_argument("--max-length", type=int, metavar="L",
                      help="largest sampled input, in the task module's unit (default: its "
                           "SIZE)")
    test.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed")
    test.add_argument("--backend", choices=("both", "interpreter", "compiled"), default="both",
                      help="which back ends to run (default both)")

    inspect = _command(
        sub, "inspect", "a .alta program or a compiled .safetensors",
        help="print the residual layout and the rule table",
        description="Print a compiled program's residual layout (every dimension with its "
                    "variable, value and source line) and its MLP rules with their source lines.")
    inspect.add_argument("--rules", type=int, default=200, metavar="N",
                         help="show at most N rules (default 200; 0 for all)")

    trace = _command(
        sub, "trace", "a .alta program",
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
    trace.add_argument("--undefined", choices=("zero", "noise", "compiled"), default="noise",
                       help="undefined head outputs in vectors: noise like what attention "
                            "outputs there (the default, as in 'alta experiment': a trained "
                            "MLP learns to ignore them), zero, or compiled: exactly what the "
                            "compiled model's attention outputs there (the inputs a learned "
                            "MLP will see in that model; compiles the program)")
    trace.add_argument("--shard-size", type=int, default=256, metavar="N",
                       help="inputs per shard (default 256)")
    trace.add_argument("--runner", choices=("local", "beam"), default="local",
                       help="local: shard after shard in this process (default); beam: an "
                            "Apache Beam pipeline, one element per shard (the 'beam' extra), "
                            "on Beam's DirectRunner unless --beam-option runner=... chooses "
                            "another; the same files either way")
    trace.add_argument("--beam-option", dest="beam_options", action="append", default=[],
                       metavar="KEY=VALUE",
                       help="a Beam pipeline option, by Beam's name without the dashes (KEY "
                            "alone for a flag); repeat for more, e.g. --beam-option "
                            "direct_num_workers=2 --beam-option "
                            "direct_running_mode=multi_processing")

    coverage = _command(
        sub, "coverage", "a .alta program (with --training: an experiment configuration)",
        help="which compiled rules fire on a set of inputs",
        description="Count how often each compiled MLP rule fires (at any layer and position) "
                    "on sampled inputs or on a trace dataset, and list the rules that never "
                    "fire with their source lines: behaviour that data does not exercise. "
                    "With --training, of an experiment's training inputs: also the values "
                    "each variable never takes there, and per test length the share of test "
                    "inputs that need an unexercised rule or value.")
    group = coverage.add_mutually_exclusive_group(required=True)
    group.add_argument("--samples", type=int, metavar="N", help="sample N inputs")
    group.add_argument("--dataset", metavar="DIR", help="a dataset written by 'alta trace'")
    group.add_argument("--training", action="store_true",
                       help="FILE is an experiment configuration (as for 'alta experiment'): "
                            "its training inputs, and its test inputs per length")
    coverage.add_argument("--lengths", metavar="A..B", help="input sizes, as for 'alta trace'")
    coverage.add_argument("--seed", type=int, default=0, metavar="S")
    coverage.add_argument("--all", action="store_true", help="list every rule with its count")

    train = _command(
        sub, "train", ("dataset", "DIR", "a dataset from 'alta trace --vectors'"),
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
    train.add_argument("--noise-scale", choices=("uniform", "spacing"), default="uniform",
                       help="uniform: --input-noise on every dimension (default); spacing: "
                            "scaled per block to its value spacing (one-hot blocks 1, a "
                            "numerical block its smallest gap between declared values)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--plot", metavar="PNG", help="also draw the loss curve here")

    experiment = _command(
        sub, "experiment", ("config", "CONFIG", "the experiment's .toml file"),
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
        sub, "plot", "a .alta program (or a compiled .safetensors)",
        help="draw one input's run: variables across layers, heads' attention",
        description="Draw, for one input, every variable at every position after every layer, "
                    "and each head's attention weights (query positions by key positions) at "
                    "one layer, as a PNG; hatched rows are query positions where the head's "
                    "output is undefined. The interpreter's heads give each of the k positions "
                    "they select 1/k; with --backend compiled (or a checkpoint) the panels show "
                    "the compiled Transformer's residual, decoded, and its softmax weights.")
    plot.add_argument("input", metavar="INPUT", help="the input string")
    plot.add_argument("-o", "--output", required=True, metavar="OUT.png")
    plot.add_argument("--layer", type=int, default=1,
                      help="the layer whose attention weights are drawn (default 1)")
    plot.add_argument("--vars", metavar="A,B,...",
                      help="the variables and heads to draw, comma-separated, in that order "
                           "(variables first, then heads); default: all of them, up to 48, "
                           "and a note of the rest")
    plot.add_argument("--backend", choices=("interpreter", "compiled"), default=None,
                      help="interpreter (default for .alta files) or compiled (the Universal "
                           "Transformer, compiled in memory; always for checkpoints)")

    export = _command(
        sub, "export", "a compiled .safetensors checkpoint",
        help="write a compiled model for PyTorch or TransformerLens",
        description="Write a compiled checkpoint as a model of another framework, into the "
                    "directory DIR. '--to torch': model.safetensors (weights and manifest), "
                    "alta_pytorch.py (a plain torch.nn.Module that needs no ALTA) and a "
                    "README.md on running it. '--to transformer-lens': the program unrolled for "
                    "--layers N layers into a TransformerLens HookedTransformer. Needs the "
                    "'export' extra (pip install -e \".[export]\").")
    export.add_argument("--to", required=True, choices=("torch", "transformer-lens"),
                        help="the framework")
    export.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="the directory to write (created if missing)")
    export.add_argument("--mlp", metavar="LEARNED.safetensors",
                        help="a learned MLP (from 'alta train') in place of the compiled one")
    export.add_argument("--layers", type=int, metavar="N",
                        help="transformer-lens: how many ALTA layers to unroll")
    return parser


_SETTABLE = ("check", "run", "compile", "verify", "test", "inspect", "trace", "coverage", "plot")


def _command(sub, name: str, first: str | tuple[str, str, str], **options):
    """The parser of sub-command `name`; `first` is its positional argument:
    (dest, metavar, help), or only the help of a FILE."""
    parser = sub.add_parser(name, **options)
    dest, metavar, help_ = ("file", "FILE", first) if isinstance(first, str) else first
    parser.add_argument(dest, metavar=metavar, help=help_)
    if name in _SETTABLE:
        parser.add_argument("--set", dest="sets", action="append", default=[],
                            metavar="NAME=VALUE",
                            help="set the program's parameter NAME (declared 'param NAME = "
                                 "DEFAULT') to VALUE; repeat for more (a checkpoint keeps "
                                 "the values it was compiled with)")
    parser.set_defaults(command=name)
    return parser
