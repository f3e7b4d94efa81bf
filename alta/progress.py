"""Progress on long work: a bar on stderr, redrawn in place on a terminal."""

from __future__ import annotations

import sys


def progress_bar(label: str, unit: str):
    """A progress bar on stderr, `show(done, total, note)`, redrawn in place on a terminal
    (a line per update otherwise, so logs stay readable)."""
    tty = sys.stderr.isatty()
    shown = set()

    def show(done: int, total: int, note: str = "") -> None:
        tenth = 10 * done // total
        if not tty and tenth in shown:  # in a log: a line per tenth of the way
            return
        shown.add(tenth)
        width = 24
        filled = width * done // total
        start, end = ("\r", "\n" if done == total else "") if tty else ("", "\n")
        print(f"{start}{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}"
              f"{', ' + note if note else ''}", end=end, file=sys.stderr, flush=True)

    return show
