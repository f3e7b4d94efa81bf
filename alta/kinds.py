"""The fixed sets of words that both the AST and the Program IR use, as `typing.Literal`s.

Each set is defined once, here: `alta.ast` and `alta.ir` use these and add the few only
they have (the source's `..` range and `in` comparison, the IR's expression kinds).
"""

from __future__ import annotations

from typing import Literal

UnaryOp = Literal["-", "not"]  # the source also has "+", which the checker drops
ArithmeticOp = Literal["+", "-", "*", "/", "//", "%", "^", "|", "&"]  # on sets: | & - ^
ComparisonOp = Literal["==", "!=", "<", "<=", ">", ">="]
LogicalOp = Literal["and", "or"]

FrameKind = Literal["token", "words", "chars"]  # a fixed token, or the input split so
OutputAt = Literal["all", "first", "last"]  # or a position index (an int)
SelectOp = Literal[ComparisonOp, "in", "not in"]  # how a head's key meets its query or a constant
