"""Sampler and oracle for addition.alta: two non-negative integers, "a+b"."""

from alta.programs._common import integer_sum as oracle
from alta.programs._common import longer_operand as size_of
from alta.programs._common import reference_sum as benchmark
from alta.programs._common import sample_sum as sample

__all__ = ["SIZE", "UNIT", "benchmark", "oracle", "sample", "size_of"]

SIZE = min(40, PARAMS["MAX_DIGITS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "digits per operand"
