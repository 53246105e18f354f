"""Physical lines of a CSV file for a reader that takes the fast path per line (pure: no I/O).

`QuotedLines` feeds csv.reader the lines of one record with quotes; a quoted field may span lines
(a description with line breaks), but not more than MAX_QUOTED_LINES: beyond that it is an unterminated
quote (`RunawayQuote`), and the caller gives the extra lines back to `Lines` to be read as rows again,
so one stray `"` cannot swallow the thousands of valid rows after it.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_QUOTED_LINES = 20  # a quoted field (a description with line breaks) spans a few lines, never thousands


class RunawayQuote(Exception):
    """A quoted field ran over MAX_QUOTED_LINES lines: an unterminated quote, not a multi-line field."""


class Lines:
    """The file's lines, with lines given back (`give_back`) read again first."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._back: list[str] = []

    def give_back(self, lines: list[str]) -> None:
        self._back[:0] = lines

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        return self._back.pop(0) if self._back else next(self._lines)


class QuotedLines:
    """What csv.reader reads for a record with quotes: the line the caller hands it (`push`), then the
    file's next lines while a quoted field spans lines; `taken` keeps them all (the record's raw text).
    More than MAX_QUOTED_LINES lines is an unterminated quote (RunawayQuote): a stray `"` must not
    swallow the thousands of valid rows after it."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pushed: str | None = None
        self.taken: list[str] = []

    def push(self, line: str) -> None:
        self._pushed = line

    def __iter__(self) -> QuotedLines:
        return self

    def __next__(self) -> str:
        line, self._pushed = self._pushed, None
        if line is None:
            if len(self.taken) >= MAX_QUOTED_LINES:
                raise RunawayQuote
            line = next(self._lines)
        self.taken.append(line)
        return line


def strip_eol(text: str) -> str:
    """`text` without its line ending."""
    return text.rstrip("\r\n")
