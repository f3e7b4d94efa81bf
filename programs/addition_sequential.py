"""Sampler and oracle for addition_sequential.alta: addition.alta's task, "a+b"."""

from alta.programs._common import integer_sum as oracle
from alta.programs._common import longer_operand as size_of
from alta.programs._common import reference_sum as benchmark
from alta.programs._common import sample_sum as sample

__all__ = ["SIZE", "UNIT", "benchmark", "oracle", "sample", "size_of"]

SIZE = 20  # the program has no limit: the experiment's longest test length
UNIT = "digits per operand"
