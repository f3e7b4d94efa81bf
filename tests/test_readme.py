"""The documents' examples are real: README.md's and docs/language.md's sample commands still
print what they show, and every ```alta block of docs/language.md passes `alta check` (or, for
an error example, fails it).

The conventions, in the Markdown source (HTML comments, invisible when rendered):

- `<!-- sample -->` on the line before a ``` fence: a sample session. Each line starting with
  `$ ` is a command (an `alta` command line, split as a shell would; `# ...` is a comment);
  the lines up to the next command are what it prints, standard output and standard error
  together, in the order written. A sample of a failing command shows its error.
- `<!-- example: NAME.alta -->` before an ```alta fence: the program is saved as NAME.alta,
  for the document's samples to use; it must pass `alta check`.
- `<!-- error example: NAME.alta -->` before an ```alta fence: the same, for a program that
  `alta check` must reject (its sample shows the error).
- `<!-- file: NAME -->` before any fence: the block is saved as NAME (a task module).
- any other ```alta block must pass `alta check`.

A document's samples run in order in one fresh directory (so a sample may use what an earlier
one wrote, such as a checkpoint), holding its saved programs and links to the checkout's
`programs/` and `experiments/`, so that commands written as a user in the checkout types
them run unchanged and write nothing into it. Commands run through `alta.cli.main` in this
process (the `alta` executable's entry point), saving the start-up of a process per command.

What the README's samples write (a checkpoint) must be ignored by the checkout's .gitignore,
since a user runs them there.

Normalised, because it varies between runs: a progress bar (`label [###...] k/n unit`) is
redrawn in place on a terminal, so only its last state is compared. Nothing else is: the
sampled inputs are seeded, and the chosen commands print no timings or absolute paths.
Samples that print timings or throughput (the benchmarks, `alta train`, `alta experiment`)
are left as plain blocks, which this test does not run; the README says where their figures
come from.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT

from alta.cli import main
from alta.environment import BUILTINS, INPUT_NAMES
from alta.syntax import keywords

DOCUMENTS = ("README.md", "docs/language.md")
_FENCE = re.compile(r"^(?:<!-- (?P<marker>[^>]*?) -->\n)?```(?P<info>[^\n]*)\n(?P<body>.*?)^```$",
                    re.MULTILINE | re.DOTALL)
_PROGRESS = re.compile(r"^(?P<label>.*) \[[#.]+\] \d+/\d+ .*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    marker: str  # the HTML comment before it, if any
    info: str  # the fence's language
    body: str


def blocks(document: str) -> list[Block]:
    text = (ROOT / document).read_text()
    found = []
    for m in _FENCE.finditer(text):
        fence = m.start("info") - 3
        found.append(Block(text.count("\n", 0, fence) + 1, m["marker"] or "", m["info"].strip(),
                           m["body"]))
    return found


def saved_name(block: Block) -> tuple[str | None, bool]:
    """(NAME the block is saved as, whether it is an error example)."""
    m = re.fullmatch(r"(?:(error )?example|file): (\S+)", block.marker)
    return (m[2], bool(m[1])) if m else (None, False)


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    expected: str


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    text, start, output = None, 0, []
    for i, line in enumerate(block.body.splitlines(), block.line + 1):
        if line.startswith("$ "):
            if text is not None:
                found.append(Command(start, text, "\n".join(output)))
            text, start, output = line[2:], i, []
        else:
            assert text is not None, f"line {i}: output before the first '$ ' command"
            output.append(line)
    if text is not None:
        found.append(Command(start, text, "\n".join(output)))
    return found


def normalise(printed: str) -> str:
    """What a terminal shows at the end: a progress bar's last state only."""
    lines: list[str] = []
    for line in printed.splitlines():
        bar = _PROGRESS.match(line)
        if bar and lines and (previous := _PROGRESS.match(lines[-1])) and \
                previous["label"] == bar["label"]:
            lines[-1] = line
        else:
            lines.append(line)
    return "\n".join(lines)


def run_alta(argv: list[str]) -> tuple[int, str]:
    """`alta ARGV` in this process: (exit status, standard output and error as printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = main(argv)
    return status, printed.getvalue()


def workspace(document: str, directory: Path) -> Path:
    """A directory where the document's commands run: its programs, links to the library."""
    for name in ("programs", "experiments"):
        (directory / name).symlink_to(ROOT / name)
    for block in blocks(document):
        name, _ = saved_name(block)
        if name is not None:
            (directory / name).write_text(block.body)
    return directory


def _samples(document: str) -> list[Block]:
    return [b for b in blocks(document) if b.marker == "sample"]


def test_the_conventions_are_used():
    """Each document has samples, and the language reference error examples and programs."""
    for document in DOCUMENTS:
        assert _samples(document), f"{document} has no <!-- sample --> block"
    programs = [b for b in blocks("docs/language.md") if b.info == "alta"]
    assert sum(saved_name(b)[1] for b in programs) >= 10
    assert len(programs) >= 20


@pytest.mark.parametrize("document", DOCUMENTS)
def test_sample_commands_print_what_the_document_shows(document, tmp_path, monkeypatch):
    monkeypatch.chdir(workspace(document, tmp_path))
    before = set(tmp_path.iterdir())
    for block in _samples(document):
        for command in commands(block):
            argv = shlex.split(command.text, comments=True)
            assert argv[0] == "alta", f"{document}:{command.line}: not an alta command"
            _, printed = run_alta(argv[1:])
            assert normalise(printed).rstrip("\n") == command.expected.rstrip("\n"), (
                f"{document}:{command.line}: `{command.text}` printed something else")
    if document == "README.md":  # what its commands write in a checkout is git-ignored
        assert_ignored(sorted(p.name + "/" * p.is_dir() for p in set(tmp_path.iterdir()) - before))


def assert_ignored(names: list[str]) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    assert names, "the README's samples wrote nothing: nothing to check"
    done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *names],
                          capture_output=True, text=True)
    ignored = set(done.stdout.split())
    assert ignored == set(names), f"not git-ignored: {sorted(set(names) - ignored)}"


def _program_blocks() -> list:
    return [pytest.param(b, id=f"line{b.line}") for b in blocks("docs/language.md")
            if b.info == "alta"]


@pytest.mark.parametrize("block", _program_blocks())
def test_language_reference_programs_check(block, tmp_path, monkeypatch):
    """Every program of docs/language.md passes `alta check`; an error example fails it,
    with a located error (not a crash)."""
    name, error = saved_name(block)
    monkeypatch.chdir(tmp_path)
    Path(name or "example.alta").write_text(block.body)
    status, printed = run_alta(["check", "--quiet", name or "example.alta"])
    if error:
        assert status == 1 and ": error: " in printed, f"docs/language.md:{block.line}"
    else:
        assert status == 0, f"docs/language.md:{block.line}:\n{printed}"


def test_links_stay_inside_the_repository():
    """The README and docs/ link only to files of the checkout, to their own headings (as
    GitHub names them) or to web pages."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for document in documents:
        text = document.read_text()
        headings = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
                    for h in re.findall(r"^#+ (.*)$", text, re.MULTILINE)}
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            if target.startswith("#"):
                assert target[1:] in headings, f"{document.name}: no heading {target}"
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{document.name}: {target}"


def test_the_reference_lists_the_reserved_names():
    """docs/language.md names exactly the grammar's words, the input and the built-ins."""
    text = (ROOT / "docs/language.md").read_text()
    words = re.search(r"The grammar's words are reserved: `([^`]*)`", text)
    assert words and set(words[1].split()) == keywords()
    others = re.search(r"`token` and `position` \(the input\) and `([^`]*)`", text)
    assert others and tuple(others[1].split()) == BUILTINS and INPUT_NAMES == ("token", "position")


def test_the_reference_shows_the_library_parity():
    """docs/language.md's first program is programs/parity.alta without its comment lines."""
    library = (ROOT / "programs/parity.alta").read_text().splitlines()
    code = "\n".join(line for line in library if not line.startswith("#")).lstrip("\n")
    shown = [b for b in blocks("docs/language.md") if b.marker == "example: parity.alta"]
    assert [b.body for b in shown] == [code + "\n"]
