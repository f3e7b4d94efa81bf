"""The scalar semantics of ALTA values: one definition for the checker and every back end.

Each rule is written once here, in a scalar form (Python values: the checker's constant
folding and the compiler's symbolic enumeration) and, beside it, a vectorised form (numpy
arrays: the interpreter) that computes the same thing. Nothing here knows about syntax,
the IR or JAX, so every stage can import it.

The rules:

- **Arithmetic** (`apply_binary`, `binary_array`, ...): Python's operators; `//` and `%`
  floor towards minus infinity (numpy's `floor_divide` and `mod` do the same), `round`
  rounds half to even (Python's `round` and `np.round` agree).
- **Division by zero** (`/`, `//`, `%` by 0) is an error: `ZeroDivisionError` in scalar
  form, `zero_divisor` in vectorised form.
- **Tables**: an index i into a table of n rows must satisfy 0 <= i < n (`index_fits`).
- **Sets** are bit masks in an int64: elements 0 .. SET_ELEMENTS - 1 (bit 63 is the sign).
- **Declared numbers**: a number x *is* a declared value v when it lies within
  `DECLARED_RTOL * |v| + DECLARED_ATOL` of the nearest one (`is_declared`); float64
  arithmetic such as 0.1 + 0.2 lands within that of 0.3, while a value such as 1e-10 is
  not the declared 0.
- **Snapping** to the nearest declared value (`snap`): x snaps to the upper of two
  neighbouring values a < b when x >= (a + b) / 2 - TIE_RTOL * max(|a|, |b|). Exact ties go
  to the larger value, and so does a mean that float64 rounding put a hair below the
  midpoint (7/24 against (1/4 + 1/3) / 2); the compiler decides on the exact value the same
  way (alta.compiler.buckets).
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Sequence

import numpy as np

SET_ELEMENTS = 63  # set elements are 0..62: bit i of a non-negative int64 mask
DECLARED_RTOL = 1e-9  # |x - v| <= DECLARED_RTOL * |v| + DECLARED_ATOL: x is the value v
DECLARED_ATOL = 1e-12
TIE_RTOL = 1e-9  # how far below a midpoint (relative to its neighbours) still counts as a tie

DIVISION_BY_ZERO = "division by zero"


# ---- arithmetic ------------------------------------------------------------------------------

def apply_binary(op: str, a, b):
    """A binary operator on Python values (sets are frozensets); raises ZeroDivisionError."""
    if isinstance(a, frozenset):
        return {"|": a | b, "&": a & b, "-": a - b, "^": a ^ b}[op]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "//":
        return a // b
    if op == "%":
        return a % b
    if op == "^":
        return a ^ b
    if op == "|":
        return a | b
    if op == "&":
        return a & b
    raise AssertionError(op)


def zero_divisor(op: str, b) -> np.ndarray | bool:
    """Where `a op b` divides by zero (vectorised; the scalar form raises)."""
    return op in ("/", "//", "%") and np.asarray(b) == 0


def binary_array(op: str, kind: str, a, b):
    """`apply_binary` on arrays of the expression kind `kind` ("int", "bool", "float",
    "set": sets as bit masks). A zero divisor gives an arbitrary value: the caller reports
    it (with `zero_divisor`) where it is evaluated."""
    if kind == "set":
        a = np.int64(a) if np.isscalar(a) else a
        if op == "-":
            return np.bitwise_and(a, np.bitwise_not(b))
        return {"|": np.bitwise_or, "&": np.bitwise_and, "^": np.bitwise_xor}[op](a, b)
    if op in ("/", "//", "%"):
        safe = np.where(np.asarray(b) == 0, 1, b)
        with np.errstate(all="ignore"):
            if op == "/":
                return np.true_divide(a, safe)
            if kind == "int":
                a, safe = np.asarray(a, dtype=np.int64), np.asarray(safe, dtype=np.int64)
            return (np.floor_divide if op == "//" else np.mod)(a, safe)
    if kind == "bool":
        return {"^": np.logical_xor, "|": np.logical_or, "&": np.logical_and}[op](a, b)
    if kind == "int":
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    ops = {"+": np.add, "-": np.subtract, "*": np.multiply, "^": np.bitwise_xor,
           "|": np.bitwise_or, "&": np.bitwise_and}
    return ops[op](a, b)


def apply_compare(op: str, a, b) -> bool:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def key_test(op: str, key, other) -> np.ndarray:
    """A head's test of key values against query values or a constant, elementwise: `<`
    and the other comparisons on categorical values as integers (tokens by id, enum members
    by declaration order); `in` a set-valued query (bit masks) or a constant frozenset."""
    if op in ("in", "not in"):
        held = np.isin(key, sorted(other)) if isinstance(other, frozenset) else \
            has_element(other, key)
        return ~held if op == "not in" else held
    return np.asarray(apply_compare(op, key, other), dtype=bool)


def apply_builtin(name: str, args: tuple):
    """min, max, abs, round on Python numbers (round: half to even, as np.round)."""
    if name == "min":
        return min(args)
    if name == "max":
        return max(args)
    if name == "abs":
        return abs(args[0])
    if name == "round":
        return int(round(args[0]))  # noqa: RUF046 (an int even for numpy floats)
    raise AssertionError(name)


# ---- tables ----------------------------------------------------------------------------------

def index_fits(index, rows: int):
    """Whether an index is inside a table of `rows` rows (scalar or array)."""
    return (index >= 0) & (index < rows)


def index_error(rows: int, index: int | None = None) -> str:
    shown = f"index {index}" if index is not None else "index"
    return f"{shown} out of range for a table of {rows} rows"


# ---- sets ------------------------------------------------------------------------------------

SET_ELEMENT_ERROR = "set element out of range"


def element_fits(x):
    """Whether an integer can be a set element (scalar or array)."""
    return (x >= 0) & (x < SET_ELEMENTS)


def set_to_bits(values) -> int:
    """A set of small integers as the bit mask the interpreter stores."""
    return sum(1 << int(v) for v in values)


def bits_to_set(bits, size: int = SET_ELEMENTS) -> frozenset[int]:
    return frozenset(i for i in range(size) if (int(bits) >> i) & 1)


def singleton_bits(x: np.ndarray) -> np.ndarray:
    """{x} as bit masks; elements that do not fit give an arbitrary mask (the caller
    reports them with `element_fits`)."""
    return np.left_shift(np.int64(1), np.clip(x, 0, SET_ELEMENTS - 1))


def has_element(bits: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`x in s` for bit masks: false for any x that cannot be an element."""
    inside = element_fits(x)
    return inside & ((bits >> np.where(inside, x, 0)) & 1).astype(bool)


# ---- declared numbers: membership and snapping -----------------------------------------------

def snap_boundaries(values: Sequence[float]) -> np.ndarray:
    """Where snapping moves from values[k] to values[k + 1]: the midpoint, less the tie
    epsilon, so that a value at or above it (ties and float64 near-ties) goes up."""
    v = np.asarray(values, dtype=np.float64)
    scale = np.maximum(np.abs(v[1:]), np.abs(v[:-1]))
    return (v[1:] + v[:-1]) / 2 - TIE_RTOL * scale


def snap(x, values: Sequence[float]) -> np.ndarray:
    """Each number snapped to the nearest declared value (sorted `values`), ties up."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return np.broadcast_to(values[0], np.shape(x)).astype(np.float64)
    return values[np.searchsorted(snap_boundaries(values), x, side="right")]


def snap_scalar(x: float, values: Sequence[float]) -> float:
    """`snap` of one Python number: the same boundaries, the same result."""
    return float(values[bisect.bisect_right(_boundary_list(tuple(values)), float(x))])


@functools.lru_cache(maxsize=256)
def _boundary_list(values: tuple[float, ...]) -> list[float]:
    # The compiler snaps every write of every path: look the boundaries up, not rebuild them.
    return snap_boundaries(values).tolist() if len(values) > 1 else []


def is_declared(x, values: Sequence[float]) -> np.ndarray:
    """Whether each number is (within float64 rounding) one of the declared values."""
    near = snap(x, values)
    return np.abs(np.asarray(x, dtype=np.float64) - near) <= \
        DECLARED_RTOL * np.abs(near) + DECLARED_ATOL


def is_declared_scalar(x: float, values: Sequence[float]) -> bool:
    near = snap_scalar(x, values)
    return abs(float(x) - near) <= DECLARED_RTOL * abs(near) + DECLARED_ATOL


def too_close(values: Sequence[float]) -> tuple[float, float] | None:
    """Two neighbouring declared values that the rules above cannot tell apart (a number
    near one would also be 'declared' as the other, or a midpoint's tie window would reach
    a value), or None."""
    for a, b in itertools.pairwise(values):
        reach = 2 * max(DECLARED_RTOL * max(abs(a), abs(b)) + DECLARED_ATOL,
                        TIE_RTOL * max(abs(a), abs(b)))
        if b - a <= reach:
            return a, b
    return None


# ---- categorical values ------------------------------------------------------------------------

def category_fits(x, size: int, low: int = 0):
    """Whether an integer is a value of `cat size` (low 0) or `cat low..low + size - 1`
    (scalar or array)."""
    return (x >= low) & (x < low + size)


# ---- showing values ----------------------------------------------------------------------------

def format_number(value: float) -> str:
    """How ALTA prints a number: the fewest significant digits that read back as the same
    float32 (the compiled model's precision, so both back ends print the same), written
    out as Python writes floats (scientific below 1e-4 and from 1e16 up) without a
    trailing ".0": 1/3 -> 0.33333334, 7/24 -> 0.29166666, 1.0 -> 1, 1e-5 -> 1e-05."""
    number = np.float32(value)
    if number == 0 or 1e-4 <= abs(number) < 1e16:
        return np.format_float_positional(number, unique=True, trim="-")
    return np.format_float_scientific(number, unique=True, trim="-", exp_digits=2)


def show(value) -> str:
    """A compile-time value as ALTA source would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset):
        return "{" + ", ".join(show(v) for v in sorted(value, key=sort_key)) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def sort_key(v):
    """Numbers before sets; sets by size, then elements."""
    return (0, v) if not isinstance(v, frozenset) else (1, len(v), sorted(v))
