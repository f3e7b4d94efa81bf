"""Source locations and the located errors every stage reports.

Every user-facing failure (bad syntax, a checker error, an undefined read at run time, a bad
input) is an `AltaError`: it carries a message and, where it has one, a `Span` into a
`Source`, and formats itself as ``file:line:col: error: ...`` followed by the source line and
a caret, like a compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Span:
    """A 1-based line/column range in one source file."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Source:
    """A source text and the name it is reported under."""

    text: str
    path: str = "<string>"
    lines: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.text.splitlines()))

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


@dataclass(frozen=True)
class Diagnostic:
    """One message at one place: an error or a warning."""

    severity: str  # "error" | "warning"
    message: str
    span: Span | None = None
    source: Source | None = None
    notes: tuple[str, ...] = ()

    def format(self) -> str:
        where = self.source.path if self.source else "alta"
        if self.span is not None:
            where += f":{self.span.line}:{self.span.column}"
        out = [f"{where}: {self.severity}: {self.message}"]
        if self.span is not None and self.source is not None:
            text = self.source.line(self.span.line)
            if text:
                width = 1
                if self.span.end_line == self.span.line:
                    width = max(1, self.span.end_column - self.span.column)
                out.append(f"    {text}")
                out.append("    " + " " * (self.span.column - 1) + "^" * width)
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)


class AltaError(Exception):
    """A failure a user can act on; never shown as a Python traceback."""

    def __init__(self, *diagnostics: Diagnostic) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))

    @classmethod
    def at(cls, message: str, span: Span | None = None, source: Source | None = None,
           notes: tuple[str, ...] = ()) -> AltaError:
        return cls(Diagnostic("error", message, span, source, notes))

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class AltaRuntimeError(AltaError):
    """An error while running a program on an input (undefined read, out-of-range write);
    `layer` and `text` say where (None where it was not raised by `at_run`)."""

    layer: int | None = None
    text: str | None = None

    @classmethod
    def at_run(cls, message: str, span: Span | None, source: Source | None, layer: int,
               position: int, text: str, context: str = "") -> AltaRuntimeError:
        """The one wording of a run-time error, shared by the interpreter and the compiled
        model: what went wrong, at which layer (0: initialisation), position and input."""
        where = f"layer {layer}" if layer else "initialisation"
        message = f"{message}; at {where}, position {position}, input {text!r}"
        error = cls.at(f"{context}: {message}" if context else message, span, source)
        error.layer, error.text = layer, text  # which run of many inputs reports it
        return error


def undefined_read(head: str, same: bool = False) -> str:
    """What reading an undefined head output is called, by both back ends (`same`: a `same`
    head, which may select several positions that hold one value)."""
    several = "several holding different values" if same else "several for a categorical head"
    return (f"reads head '{head}', whose output is undefined here (its attention selected "
            f"no position, or {several})")


def read_text(path: str | Path, what: str = "file") -> str:
    """A UTF-8 text file's contents, or an `AltaError` saying plainly why not."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AltaError.at(f"no such {what}: {path}") from None
    except UnicodeDecodeError as exc:
        raise AltaError.at(f"cannot read {what} {path}: it is not UTF-8 text (byte "
                           f"{exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except OSError as exc:
        raise AltaError.at(f"cannot read {what} {path}: {exc}") from None
