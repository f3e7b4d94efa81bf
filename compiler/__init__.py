"""Compiler: Program IR -> rules -> residual layout -> weights (see DESIGN.md)."""
