"""Vectorised evaluation of IR expressions and MLP statements over batch x position arrays.

Values are numpy arrays of shape (batch, positions) (or scalars that broadcast): categorical
values as int64, numerical values as float64, booleans as bool, sets as int64 bit masks.
Evaluation carries a boolean *mask* of the positions where the expression is actually
evaluated: the branches not taken by an `if`, the right operand of a short-circuit `and`, and
so on, are evaluated only where they are reached, so reading an undefined head output or
dividing by zero is an error exactly where the program would do it, never elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alta import ir, semantics
from alta.errors import undefined_read


class EvaluationFault(Exception):
    """A run-time error at one (sequence, position); the interpreter adds layer and input."""

    def __init__(self, node, message: str, where: np.ndarray) -> None:
        b, i = (int(x) for x in np.argwhere(where)[0])
        self.node, self.message, self.sequence, self.position = node, message, b, i
        super().__init__(message)


def _fault_if(node, message: str, bad) -> None:
    if np.any(bad):
        raise EvaluationFault(node, message, np.broadcast_to(bad, np.shape(bad)))


@dataclass
class State:
    """Per-variable arrays, plus undefined masks for head outputs."""

    values: dict[str, np.ndarray]
    undefined: dict[str, np.ndarray]


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint64)
    return np.bitwise_count(x).astype(np.int64)


class Evaluator:
    """Evaluates one program's expressions against one state (one MLP application)."""

    def __init__(self, program: ir.Program, state: State, inputs: dict | None = None,
                 bucket_numerical: bool = True) -> None:
        self.program = program
        self.state = state
        self.inputs = inputs or {}
        self.locals: dict[int, np.ndarray] = {}
        self.bucket_numerical = bucket_numerical
        self._buckets = {name: np.asarray(program.type_of(name).values)
                         for name in list(program.variable_index) + list(program.head_index)
                         if isinstance(program.type_of(name), ir.Numerical)}

    # -- expressions --------------------------------------------------------------------------

    def eval(self, e: ir.Expr, mask: np.ndarray):
        """`e`'s values (an array, or a scalar that broadcasts); a fault counts only where
        `mask` holds, at the positions that reach `e`."""
        match e:
            case ir.Read():
                return self._read(e, mask)
            case ir.Const():
                return np.int64(semantics.set_to_bits(e.value)) if e.kind == "set" else e.value
            case ir.Local():
                return self.locals[e.uid]
            case ir.InputRead():
                return self.inputs[e.which]
            case ir.Unary():
                return self._unary(e, mask)
            case ir.Binary():
                return self._binary(e, mask)
            case ir.Compare():
                a, b = self.eval(e.left, mask), self.eval(e.right, mask)
                return _COMPARISONS[e.op](a, b)
            case ir.Member():
                return self._member(e, mask)
            case ir.Logical():
                return self._logical(e, mask)
            case ir.Cond():
                return self._cond(e, mask)
            case ir.Builtin():
                return self._builtin(e, mask)
            case ir.Lookup():
                return self._lookup(e, mask)
            case ir.LetIn():
                self.locals[e.uid] = self.eval(e.value, mask)
                return self.eval(e.body, mask)
        raise AssertionError(e)

    def _read(self, e: ir.Read, mask):
        value = self.state.values[e.name]
        undefined = self.state.undefined.get(e.name)
        if undefined is not None:
            _fault_if(e, undefined_read(e.name, self.program.head(e.name).same),
                      mask & undefined)
        if e.name in self._buckets and self.bucket_numerical:
            return semantics.snap(value, self._buckets[e.name])
        return value

    def _unary(self, e: ir.Unary, mask):
        x = self.eval(e.operand, mask)
        if e.op == "-":
            return -np.asarray(x, dtype=np.float64 if e.kind == "float" else np.int64)
        return np.logical_not(x)

    def _binary(self, e: ir.Binary, mask):
        a, b = self.eval(e.left, mask), self.eval(e.right, mask)
        if e.kind != "set":
            _fault_if(e, semantics.DIVISION_BY_ZERO, mask & semantics.zero_divisor(e.op, b))
        return semantics.binary_array(e.op, e.kind, a, b)

    def _member(self, e: ir.Member, mask):
        x = np.asarray(self.eval(e.element, mask), dtype=np.int64)
        if isinstance(e.container, ir.Const):
            found = np.isin(x, np.fromiter(e.container.value, dtype=np.int64))
        else:
            bits = np.asarray(self.eval(e.container, mask), dtype=np.int64)
            found = semantics.has_element(bits, x)
        return ~found if e.negated else found

    def _logical(self, e: ir.Logical, mask):
        left = np.asarray(self.eval(e.left, mask), dtype=bool)
        reach = mask & (left if e.op == "and" else ~left)
        if not reach.any():
            return left
        right = np.asarray(self.eval(e.right, reach), dtype=bool)
        return (left & right) if e.op == "and" else (left | right)

    def _cond(self, e: ir.Cond, mask):
        cond = np.asarray(self.eval(e.cond, mask), dtype=bool)
        cond = np.broadcast_to(cond, mask.shape)
        then_mask, else_mask = mask & cond, mask & ~cond
        then = self.eval(e.then, then_mask) if then_mask.any() else _zero(e.kind)
        orelse = self.eval(e.orelse, else_mask) if else_mask.any() else _zero(e.kind)
        return np.where(cond, then, orelse)

    def _builtin(self, e: ir.Builtin, mask):
        args = [self.eval(a, mask) for a in e.args]
        if e.name == "min":
            return np.minimum(*args)
        if e.name == "max":
            return np.maximum(*args)
        if e.name == "abs":
            return np.abs(args[0])
        if e.name == "round":
            return np.round(args[0]).astype(np.int64)  # half to even, like Python's round
        if e.name == "len":
            return _popcount(args[0])
        if e.name == "singleton":
            x = np.asarray(args[0], dtype=np.int64)
            _fault_if(e, semantics.SET_ELEMENT_ERROR, mask & ~semantics.element_fits(x))
            return semantics.singleton_bits(x)
        raise AssertionError(e.name)

    def _lookup(self, e: ir.Lookup, mask):
        table = np.asarray(_bit_masks(e.table) if e.kind == "set" else e.table)
        index = []
        for axis, idx in enumerate(e.indices):
            i = np.asarray(self.eval(idx, mask), dtype=np.int64)
            _fault_if(idx, semantics.index_error(table.shape[axis]),
                      mask & ~semantics.index_fits(i, table.shape[axis]))
            index.append(np.clip(i, 0, table.shape[axis] - 1))
        return table[tuple(index)]

    # -- statements -----------------------------------------------------------------------------

    def run_block(self, stmts, mask: np.ndarray, writes: dict[str, np.ndarray],
                  wrote: dict[str, np.ndarray]) -> None:
        """Execute statements where `mask` holds; writes go to `writes` (parallel assignment)."""
        for s in stmts:
            match s:
                case ir.Assign():
                    value = np.broadcast_to(self.eval(s.value, mask), mask.shape)
                    self.check_value(s, s.variable, value, mask)
                    value = self.stored(s.variable, value)
                    writes[s.variable] = np.where(mask, value, writes[s.variable])
                    wrote[s.variable] = wrote[s.variable] | mask
                case ir.LetStmt():
                    value = np.broadcast_to(self.eval(s.value, mask), mask.shape)
                    old = self.locals.get(s.uid)
                    self.locals[s.uid] = value if old is None else np.where(mask, value, old)
                case ir.IfStmt():
                    cond = np.broadcast_to(np.asarray(self.eval(s.cond, mask), dtype=bool),
                                           mask.shape)
                    then_mask, else_mask = mask & cond, mask & ~cond
                    if then_mask.any():
                        self.run_block(s.then, then_mask, writes, wrote)
                    if s.orelse and else_mask.any():
                        self.run_block(s.orelse, else_mask, writes, wrote)
                case _:
                    raise AssertionError(s)

    def check_value(self, node, name: str, value: np.ndarray, mask: np.ndarray) -> None:
        """Writing a value outside a variable's declared range is an error."""
        type_ = self.program.type_of(name)
        if isinstance(type_, ir.Categorical):
            bad = ~semantics.category_fits(value, type_.size, type_.low)
            what = f"outside {type_.low}..{type_.low + type_.size - 1}"
        elif isinstance(type_, ir.Numerical):
            bad = ~semantics.is_declared(value, type_.values)
            what = "not one of its declared values"
        else:
            allowed = np.fromiter(map(semantics.set_to_bits, type_.sets), dtype=np.int64)
            bad = ~np.isin(value, allowed)
            what = "not one of its declared sets"
        if np.any(mask & bad):
            where = mask & bad
            b, i = (int(x) for x in np.argwhere(where)[0])
            if isinstance(type_, ir.SetValued):
                shown = type_.format(semantics.bits_to_set(value[b, i]))
            elif isinstance(type_, ir.Numerical):
                shown = type_.format(value[b, i])
            else:
                shown = str(int(value[b, i]))
            raise EvaluationFault(node, f"writes {shown} to '{name}', {what} "
                                        f"({type_.describe()})", where)

    def stored(self, name: str, value: np.ndarray) -> np.ndarray:
        """What a checked write stores: a numerical variable holds the declared value itself
        (0.1 + 0.2 is stored as 0.3), as the compiled model does."""
        type_ = self.program.type_of(name)
        return semantics.snap(value, type_.values) if isinstance(type_, ir.Numerical) \
            else value


_COMPARISONS = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                ">": np.greater, ">=": np.greater_equal}


def _bit_masks(table):
    return tuple(_bit_masks(row) for row in table) if isinstance(table, tuple) \
        else semantics.set_to_bits(table)


def _zero(kind: str):
    return {"int": 0, "bool": False, "float": 0.0, "set": 0}[kind]


def evaluate_condition(program: ir.Program, expr: ir.Expr, values: dict[str, np.ndarray],
                       mask: np.ndarray) -> np.ndarray:
    """A state-level boolean (halting, output filter) at every position of `mask`."""
    evaluator = Evaluator(program, State(values, {}))
    return np.broadcast_to(np.asarray(evaluator.eval(expr, mask), dtype=bool), mask.shape)
