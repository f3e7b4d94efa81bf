"""The ALTA grammar (`alta.lark`), shipped as package data."""
