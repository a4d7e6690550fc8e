"""The posture controls over the real-world chart corpus (tests/fixtures/charts): per object, per
control, the verdict each case's expected.yaml gives; what the report lists as not judged; and each
bad input refused with one line naming the command to run first."""

from __future__ import annotations

import pytest

from nimwarden.errors import ConfigError
from nimwarden.k8s import source as k8s
from tests import corpus

GOOD = [c for c in corpus.cases() if not corpus.expected(c).get("bad_input")]
BAD = {
    "bad-ansible": "an Ansible playbook?",
    "bad-broken-separator": "document separator glued to a key",
    "bad-kustomization": "`kubectl kustomize",
    "bad-unrendered-chart": "`helm template RELEASE",
}


def test_the_corpus_is_at_least_ten_published_charts_and_samples():
    assert len(GOOD) >= 10
    for case in corpus.cases():
        text = (corpus.CHARTS / case / "SOURCE.md").read_text(encoding="utf-8")
        assert "Repository:" in text and ("no file was copied" in text or "(nimwarden corpus)" in text), case


@pytest.mark.parametrize("case", GOOD)
def test_verdicts_per_object_per_control_match_the_expected(case):
    assert corpus.differences(case) == []


@pytest.mark.parametrize("case", GOOD)
def test_overall_per_control_matches_the_expected(case):
    got = corpus.verdicts(corpus.load(case))
    for control, want in (corpus.expected(case).get("overall") or {}).items():
        seen = [row[control] for row in got.values() if control in row]
        overall = "fail" if "fail" in seen else "pass" if "pass" in seen else "not_applicable"
        assert overall == want, (case, control)


@pytest.mark.parametrize("case", [*GOOD, "bad-crds-only"])
def test_kinds_not_judged_are_listed(case):
    inventory = k8s.inventory(corpus.load(case))
    assert sorted(inventory["not_judged"]) == sorted(corpus.expected(case).get("kinds_not_judged") or [])


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_the_file_and_what_to_run(case):
    with pytest.raises(ConfigError) as exc:
        corpus.load(case)
    message = str(exc.value)
    assert "\n" not in message and str(corpus.CHARTS / case / "manifests") in message
    assert BAD[case] in message


def test_agreement_per_control_is_total():
    table = corpus.agreement()
    assert all(v["disagree"] == 0 for v in table.values()), corpus.summarize(table)
