"""Compiler: Program IR -> reachable values -> sparse rules (+ the fault detector's) ->
residual layout -> parameters -> execution plan (docs/design.md).

`compile_program` is the whole pipeline, one call per stage.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from alta import ir
from alta.compiler.faults import FaultSite, fault_rules, plan_faults
from alta.compiler.layout import ResidualLayout, build_layout
from alta.compiler.rules import RuleSet, compile_rules
from alta.compiler.structure import ExecutionPlan, plan_execution
from alta.compiler.values import reachable_values
from alta.compiler.weights import CompileReport, build_weights
from alta.config import ModelConfig
from alta.parameters import Parameters


@dataclass(frozen=True)
class CompiledProgram:
    program: ir.Program
    layout: ResidualLayout
    rules: RuleSet | None  # None when loaded from a checkpoint (derivable from the source)
    parameters: Parameters
    report: CompileReport
    config: ModelConfig
    faults: tuple[FaultSite, ...] = ()  # the head reads the network checks, in order

    @property
    def weights(self) -> dict:
        """The parameters by name (attribute path), as a checkpoint holds them."""
        return self.parameters.flat()

    @functools.cached_property
    def execution(self) -> ExecutionPlan:
        """The structure the model's fast paths use, derived once from the parameters."""
        return plan_execution(self.program, self.layout, self.parameters)


def compile_program(program: ir.Program, max_length: int | None = None,
                    fault_detector: bool = True) -> CompiledProgram:
    """Compile a checked program into Universal Transformer weights. Without the
    `fault_detector` the model answers silently where the interpreter reports an undefined
    read (for measuring what the detector costs)."""
    domains = reachable_values(program)                  # the values each name can take
    plan = plan_faults(program, detector=fault_detector)
    rules = replace(compile_rules(program, domains),     # MLP body -> minimised sparse rules
                    faults=tuple(fault_rules(plan, domains)))  # + undefined head reads
    layout = build_layout(plan.program, appended=plan.synthetic)  # -> residual dimensions
    parameters, report = build_weights(plan.program, layout, rules, max_length,  # -> weights
                                       plan.selection)
    config = model_config(plan.program, layout, parameters, report, plan.sites)
    return CompiledProgram(program, layout, rules, parameters, report, config, plan.sites)


def model_config(program: ir.Program, layout: ResidualLayout, parameters: Parameters,
                 report: CompileReport, sites: tuple[FaultSite, ...] = ()) -> ModelConfig:
    attention, position = parameters.attention, parameters.embed.position
    heads, width, key_width = attention.query.shape
    return ModelConfig(
        vocab_size=len(program.vocab), width=width, num_heads=heads, key_width=key_width,
        value_width=attention.value.shape[2], mlp_widths=report.mlp_widths,
        activation="clipped_relu",
        max_positions=position.shape[0] if position is not None else 0,
        token_at_position=parameters.embed.token_at_position is not None,
        head_offsets=tuple(h.offsets for h in program.heads), attention_scale=1.0,
        halting_widths=tuple(layer.weight.shape[1] for layer in parameters.halting),
        max_layers=program.max_layers, attention_sink=attention.sink is not None,
        fault_dims=tuple(layout.block(s.name).start for s in sites))
