"""ALTA: a programming language whose programs are Transformers.

The pipeline, one module per stage, data flowing one way:

    source --alta.syntax--> AST (alta.ast) --alta.checker--> Program IR (alta.ir)
      |--> alta.interpreter (+ alta.evaluation, alta.semantics): outputs and traces
      '--> alta.compiler: reachable values -> rules (+ fault detector) -> residual layout
           -> parameters (alta.parameters) -> execution plan (alta.compiler.structure)
           -> alta.model (Flax NNX UniversalTransformer) -> alta.compiled (runs, faults),
              alta.checkpoint (safetensors + manifest), alta.verify (layer by layer)

Around them: alta.framing (inputs and outputs), alta.traces (datasets), alta.training
(learned MLPs), alta.experiment (the trace-supervision study), alta.testing (`alta test`),
alta.cli (the `alta` command).

From Python, four names (alta.api) do what the commands do:

    import alta
    program = alta.load("programs/parity.alta")   # a Program (or source text; a
    program.run(["1 0 1 1"])                       # .safetensors path loads a Model)
    model = program.compile()                      # a Model: .run, .verify, .save
"""

__version__ = "0.1.0"
__all__ = ["AltaError", "Model", "Program", "Run", "__version__", "load"]


def __getattr__(name: str):
    # Lazily, so that `import alta` stays light (the command line imports it first).
    if name in ("load", "Program", "Model", "Run"):
        from alta import api

        return getattr(api, name)
    if name == "AltaError":
        from alta.errors import AltaError

        return AltaError
    raise AttributeError(f"module 'alta' has no attribute {name!r}")
