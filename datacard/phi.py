"""Identifying values and the search for them in what a release ships.

:func:`phi_token_set` lists the identifying values of every catalogued series (from the private part);
:func:`scan_for_phi` finds them in a release's text files, NRRD headers and PNG text before anything is published.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from curation import Workspace
from curation.dicom.deid import PHI_COLUMNS

__all__ = ["TokenFinder", "phi_token_set", "scan_for_phi"]

_TEXT = {".csv", ".json", ".md", ".html", ".txt", ".yaml", ""}

# what de-identification tools and phantoms put where a name was: not identifying, and common words
_PLACEHOLDERS = {"REMOVED", "ANONYMOUS", "ANONYMIZED", "ANONYMISED", "ANONYMIZE", "ANON", "DEIDENTIFIED",
                 "DE-IDENTIFIED", "REDACTED", "UNKNOWN", "NONE", "NULL", "EMPTY", "PATIENT", "PHANTOM", "TEST"}


def _placeholder(text: str) -> bool:
    words = [w for w in re.split(r"[\^ ,]+", text.upper()) if w]
    return bool(words) and all(w in _PLACEHOLDERS for w in words)


def phi_token_set(ws: Workspace) -> set[str]:
    """Identifying values of every catalogued series (from the private part).

    Whole values of every identifying field (names, ids, UIDs, dates, times, accession numbers,
    institution and station names), and the parts of person names of five letters or more; shorter
    parts and the words of institution names would match ordinary text. Placeholders that de-identification
    left (``REMOVED``, ``ANONYMOUS``...) are not identifying and are left out.
    """
    series = pd.read_parquet(ws.require(ws.series_table, "scan"))
    tokens: set[str] = set()
    for row in series.to_dict("records"):
        for column in PHI_COLUMNS:
            value = row.get(column)
            text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
            if _placeholder(text):
                continue
            if len(text) >= 4 and (not text.isdigit() or len(text) >= 6):
                tokens.add(text)
            if column in ("patient_name", "referring_physician"):
                tokens |= {part for part in re.split(r"[\^ ,]+", text)
                           if len(part) >= 5 and not part.isdigit() and not _placeholder(part)}
    return tokens


def scan_for_phi(folder: Path, tokens: set[str]) -> list[tuple[str, str]]:
    """(file, token) for every identifying token found in a text file, an NRRD header or a PNG's text.

    A token matches as a whole word (letters, digits and ``_`` around it end no word), written as in the
    header, in capitals or capitalised ('DOE', 'Doe'): the lower-case words of generated text (HTML tags,
    JSON keys) are not names. The search takes time in proportion to the text and the tokens, not their product
    (:class:`TokenFinder`), so a release of thousands of cases is checked against all their identifying values.
    """
    finder = TokenFinder(tokens)
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".nrrd":
            with path.open("rb") as handle:
                text = handle.read(1 << 16).split(b"\n\n", 1)[0].decode("latin-1")
        elif path.suffix in _TEXT or path.suffix == ".png":
            text = path.read_bytes().decode("latin-1")
        else:
            continue
        hits += [(path.relative_to(folder).as_posix(), token) for token in finder.found(text)]
    return hits


class TokenFinder:
    """Finds which tokens occur in a text as whole words, each written as given, in capitals or capitalised.

    Each written form is looked up by its longest word (a run of letters, digits and ``_``) in an index of the
    text's words, and checked around that word: the work grows with the text and with the number of tokens,
    not with their product (one pattern per token over every file grew with both).
    """

    def __init__(self, tokens: set[str]) -> None:
        self.forms: dict[str, list[tuple[str, str, int]]] = {}  # anchor word -> (token, form, anchor offset)
        self.plain: list[tuple[str, str]] = []  # forms without any word character
        for token in sorted(tokens):
            for form in sorted({token, token.upper(), token.title()}):
                words = list(_WORD.finditer(form))
                if not words:
                    self.plain.append((token, form))
                    continue
                anchor = max(words, key=lambda m: len(m.group()))
                self.forms.setdefault(anchor.group(), []).append((token, form, anchor.start()))

    def found(self, text: str) -> list[str]:
        """The tokens that occur in ``text``, sorted."""
        hits: set[str] = set()
        for word in _WORD.finditer(text):
            for token, form, offset in self.forms.get(word.group(), ()):
                if token in hits:
                    continue
                start = word.start() - offset
                end = start + len(form)
                if start >= 0 and text.startswith(form, start) and not _is_word_char(text, start - 1) \
                        and not _is_word_char(text, end):
                    hits.add(token)
        for token, form in self.plain:
            if token not in hits and _plain_hit(text, form):
                hits.add(token)
        return sorted(hits)


_WORD = re.compile(r"[0-9A-Za-z_]+")


def _is_word_char(text: str, index: int) -> bool:
    return 0 <= index < len(text) and (text[index].isascii() and (text[index].isalnum() or text[index] == "_"))


def _plain_hit(text: str, form: str) -> bool:
    start = text.find(form)
    while start >= 0:
        if not _is_word_char(text, start - 1) and not _is_word_char(text, start + len(form)):
            return True
        start = text.find(form, start + 1)
    return False
