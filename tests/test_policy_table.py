"""The profile table in docs/policy.md is what the code decides (regenerate it with
``python tests/policy_people.py`` and paste it between the markers)."""

from __future__ import annotations

import re
from pathlib import Path

from policy_people import PEOPLE, decide, table

DOC = Path(__file__).resolve().parents[1] / "docs" / "policy.md"
MARKERS = re.compile(r"<!-- profile-table:start -->\n(.*?)<!-- profile-table:end -->", re.S)


def test_the_table_in_the_docs_is_what_the_code_decides():
    found = MARKERS.search(DOC.read_text(encoding="utf-8"))
    assert found is not None, "the profile-table markers are missing from docs/policy.md"
    assert found[1].strip() == table(), "docs/policy.md is stale: run python tests/policy_people.py"


def test_the_table_shows_what_a_province_expects_at_its_border():
    border = {p.who: decide(p, "border", "in").decision for p in PEOPLE}
    assert border["adult, declared, 2 doses"].outcome == "pass"
    assert border["the same, before the first status document"].reasons == ("status_missing",)
    assert border["child of 12, declared, not vaccinated"].outcome == "pass"
    assert border["adult on the quarantine watchlist"].outcome == "stop"
    # Outbound only the declaration is asked for.
    out = {p.who: decide(p, "border", "out").decision for p in PEOPLE}
    assert out["adult, declared, 1 dose"].outcome == "pass"
    assert out["adult, nothing on record"].reasons == ("declaration_missing",)
