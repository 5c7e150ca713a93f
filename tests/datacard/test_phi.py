"""The search for identifying values finds exactly what a whole-word pattern per token finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from datacard.phi import TokenFinder

_CHARS = st.sampled_from(list("abAB12_ .^-,;\nÑé"))
_TEXT = st.text(_CHARS, max_size=60)


def _by_pattern(text: str, tokens: set[str]) -> list[str]:
    """The definition: a token is found where one of its forms stands with no letter, digit or '_' beside it."""
    found = []
    for token in sorted(tokens):
        forms = sorted({token, token.upper(), token.title()})
        pattern = "|".join(rf"(?<![0-9A-Za-z_]){re.escape(f)}(?![0-9A-Za-z_])" for f in forms)
        if re.search(pattern, text):
            found.append(token)
    return found


@settings(max_examples=400, deadline=None)
@given(st.sets(st.text(_CHARS, min_size=1, max_size=6), min_size=1, max_size=5), _TEXT, st.data())
def test_the_finder_agrees_with_a_pattern_per_token(tokens: set[str], text: str, data: st.DataObject) -> None:
    token = data.draw(st.sampled_from(sorted(tokens)))
    form = data.draw(st.sampled_from([token, token.upper(), token.title()]))
    at = data.draw(st.integers(0, len(text)))
    planted = text[:at] + form + text[at:]
    for candidate in (text, planted):
        assert TokenFinder(tokens).found(candidate) == _by_pattern(candidate, tokens)


def test_names_uids_and_dates_in_a_table() -> None:
    finder = TokenFinder({"Doe^John", "1.2.826.0.1.3680043.2", "20190312", "City Hospital"})
    text = "image_id;note\ns0001;DOE^JOHN seen 20190312\ns0002;uid 1.2.826.0.1.3680043.21 at city hospital\n"
    assert finder.found(text) == ["20190312", "Doe^John"]  # the UID is another one's prefix; lower case is no name
