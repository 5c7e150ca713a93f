"""One registry of exclusion reasons serves the filter's rules, the annotators and the flow figure."""

from __future__ import annotations

import pytest

from curation.annotation.worklist import EXCLUSION_REASONS
from curation.reasons import ANNOTATOR_CODES, REASONS, RULE_CODES, ExclusionReason, reason_label, reasons_of
from curation.selection.filter import REASON_LABELS
from curation.selection.rules import RULES, Rule


def test_rules_annotators_and_flow_share_the_registry() -> None:
    assert tuple(rule.code for rule in RULES) == RULE_CODES  # the filter applies them in registry order
    assert {code: REASONS[code].label for code in RULE_CODES} == REASON_LABELS
    assert reasons_of("annotator") == EXCLUSION_REASONS and tuple(EXCLUSION_REASONS) == ANNOTATOR_CODES
    assert {"anatomy_distorted", "extremity", "missing_slices"} <= set(ANNOTATOR_CODES)
    assert reason_label("missing_slices") == "missing slices" and reason_label("from_an_older_version") == \
        "from_an_older_version"


def test_a_rule_or_reason_outside_the_registry_is_refused() -> None:
    with pytest.raises(ValueError, match="rule 'made_up': add its reason to curation.reasons first"):
        Rule("made_up", lambda row, settings: None)
    with pytest.raises(ValueError, match="exclusion reason 'two words': expected an identifier code and a label"):
        ExclusionReason("two words", "x", frozenset())
    with pytest.raises(ValueError, match="'nobody' is not a valid ReasonSource"):
        reasons_of("nobody")


def test_the_annotator_order_holds_exactly_the_annotator_reasons() -> None:
    from curation.reasons import ReasonSource

    assert set(ANNOTATOR_CODES) == {c for c, r in REASONS.items() if ReasonSource.ANNOTATOR in r.sources}
    assert ANNOTATOR_CODES[0] == "anatomy_distorted"
