"""Sampler and oracle for parity_absolute.alta: bits separated by spaces, "1 0 1 1" -> 1."""

from alta.programs._common import parity as oracle
from alta.programs._common import sample_bits as sample

__all__ = ["SIZE", "UNIT", "oracle", "sample"]

SIZE = min(100, PARAMS["MAX_BITS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "bits"
