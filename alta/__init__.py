"""ALTA: a programming language whose programs are Transformers.

The pipeline, one module per stage, data flowing one way:

    source --alta.syntax--> AST (alta.ast) --alta.checker--> Program IR (alta.ir)
      |--> alta.interpreter (+ alta.evaluation, alta.semantics): outputs and traces
      '--> alta.compiler: reachable values -> rules (+ fault detector) -> residual layout
           -> parameters (alta.parameters) -> execution plan (alta.compiler.structure)
           -> alta.model (Flax NNX UniversalTransformer) -> alta.compiled (runs, faults),
              alta.checkpoint (safetensors + manifest), alta.verify (layer by layer)

Around them: alta.framing (inputs and outputs), alta.traces (datasets), alta.training
(learned MLPs), alta.experiment (the trace-supervision study), alta.cli (the `alta` command).
"""

__version__ = "0.1.0"
