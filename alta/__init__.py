"""ALTA: a programming language whose programs are Transformers.

Pipeline (one module per stage): `alta.syntax` (source -> AST), `alta.checker`
(AST -> Program IR, `alta.ir`), `alta.interpreter` (Program IR -> outputs and traces).
"""

__version__ = "0.1.0"
