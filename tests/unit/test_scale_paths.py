"""The fast paths a repository-scale audit takes give the same answers as the plain ones.

Speed itself is measured in benchmarks/repo_scale.py (docs/benchmarks.md); these tests pin what the
shortcuts must not change: the values YAML gives, what redaction hides, what the reports hold, which
bindings and Services a workload is judged with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nimwarden import cli, redact
from nimwarden.families.rbac import judge as rbac
from nimwarden.k8s import exposure, yaml_nodes
from nimwarden.k8s.manifests import load_manifests
from nimwarden.k8s.workloads import pod_templates
from nimwarden.report import gating, grouped, oscal
from nimwarden.report.html import render_html
from nimwarden.report.summary import write_summary
from tests.conftest import load_benchmark
from tests.unit.report_samples import result

ROOT = Path(__file__).resolve().parents[2]


def _fast(text: str) -> list:
    loader = yaml_nodes.Loader(text)
    out = []
    try:
        while loader.check_node():
            out.append(yaml_nodes.construct(loader, loader.get_node()))
    finally:
        loader.dispose()
    return out


def test_the_fast_yaml_reader_gives_the_safe_loaders_values_on_every_manifest_of_the_repository():
    files = [p for p in sorted((ROOT / "tests" / "fixtures").rglob("*.yaml")) + sorted((ROOT / "nimwarden").rglob("*.yaml"))]
    compared = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            want = list(yaml.load_all(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError:
            continue
        assert _fast(text) == want, path
        compared += 1
    assert compared > 150


def test_a_key_or_short_value_read_twice_is_one_string_and_the_values_stay_the_safe_loaders(monkeypatch):
    text = "metadata: {name: team-a-model-store, labels: {app.kubernetes.io/instance: team-a-model-store}}\n"
    first, second = _fast(text)[0], _fast(text.replace("team-a", "team-b").replace("store}}", "store}, x: team-a-model-store}"))[0]
    assert first == yaml.safe_load(text)
    key = next(iter(first["metadata"]["labels"]))
    assert key is next(iter(second["metadata"]["labels"]))  # one str object for the key in both documents
    assert first["metadata"]["name"] is second["metadata"]["x"]  # and for a short value
    long = "v" * (yaml_nodes.SHARED_UP_TO + 1)
    assert _fast(f"a: {long}")[0]["a"] is not _fast(f"b: {long}")[0]["b"]  # a long value is its own
    monkeypatch.setattr(yaml_nodes, "SHARED_MAX", 0)  # full: nothing more is kept, and values are the same
    assert _fast("fresh-key-never-seen: fresh-value-never-seen") == [{"fresh-key-never-seen": "fresh-value-never-seen"}]
    assert "fresh-key-never-seen" not in yaml_nodes._shared


@pytest.mark.parametrize("text", [
    "a: &x [1, 2]\nb: *x\nc: !!set {q: null}\nd: 2001-12-14\n<<: {m: 1}\ne: 0x1F\nf: yes\ng: ~\nh: 1.5e3\ni: '0755'\n",
    "&a [*a]\n", "a: &a {b: *a}\n", "- !!binary aGVsbG8=\n- !!omap [{a: 1}]\n",
])
def test_the_fast_yaml_reader_keeps_tags_aliases_and_merge_keys(text):
    got, want = _fast(text), list(yaml.load_all(text, Loader=yaml.SafeLoader))
    assert repr(got) == repr(want)
    if "b: *x" in text:
        assert got[0]["a"] is got[0]["b"]  # an alias is one object, as the safe constructor makes it


def test_an_unhashable_key_is_still_a_yaml_error():
    with pytest.raises(yaml.YAMLError):
        _fast("? [1]\n: x\n")


def test_evidence_that_passes_the_quick_check_holds_no_secret_and_the_rest_is_redacted():
    clean = {"findings": ["Deployment/a/b → c: spec.template.spec.securityContext — runAsNonRoot"], "n": 3}
    assert redact.redact_tree(clean) is clean  # nothing to hide: not walked, not copied
    leaked = {"env": [{"value": "nvapi-" + "Q" * 40}], "url": "https://user:hunter22@example.com/x"}
    out = json.dumps(redact.redact_tree(leaked))
    assert "QQQQQQQQ" not in out and "hunter22" not in out
    redact.register('pa"ss\\word-77')  # a known secret with characters JSON escapes
    out = json.dumps(redact.redact_tree({"text": ['seen: pa"ss\\word-77 here']}))
    assert "word-77" not in out


def test_a_secret_learnt_after_a_text_was_redacted_is_redacted_in_it_next_time():
    text = "value zq-unique-credential-8812 in a config"
    assert redact.redact_text(text) == text
    redact.register("zq-unique-credential-8812")
    assert "credential-8812" not in redact.redact_text(text)


def test_summary_json_with_one_result_a_line_is_the_same_document(tmp_path):
    summary = {"schema": "nimwarden/summary/v1", "results": [result("A-1", "tls", "high", "d", "s", "fail", "r ü \"q\"", {"k": [1, 2]})],
               "totals": {"fail": 1}, "interrupted": False}
    text = write_summary(tmp_path, summary).read_text(encoding="utf-8")
    assert json.loads(text) == summary
    assert '\n    {"control": "A-1"' in text  # each result on a line of its own
    for empty in ({"results": []}, {}, {"a": {"b": 1}}):
        assert json.loads(write_summary(tmp_path, empty).read_text()) == empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # the results' part written first is gone


def test_summary_results_written_before_the_rest_is_known(tmp_path):
    """write_all writes the results' lines while the writers beside finish, and the keys (timings) last."""
    from nimwarden.report.summary import finish_summary, write_results

    summary = {"schema": "nimwarden/summary/v1", "results": [result("A-1", "tls", "high", "d", "s", "fail", "r", {})],
               "timings": {}}
    body = write_results(tmp_path, summary)
    summary["timings"]["reports_s"] = 0.5  # known only now
    text = finish_summary(tmp_path, summary, body).read_text(encoding="utf-8")
    assert json.loads(text) == summary and text.index('"timings"') < text.index('"results"')
    assert not body.exists()


def _big_summary(n: int) -> dict:
    results = []
    for i in range(n):
        dep = f"w{i % 40}"
        status = "fail" if i % 7 == 0 else "not_applicable" if i % 3 else "pass"
        reason = f"deployment {dep} declares no endpoints" if status == "not_applicable" else f"verdict {i}"
        results.append(result(f"C-{i % 25:03d}", "pod-security", "high", dep, f"Deployment/ns/{dep}", status, reason,
                              {"findings": [f"f{i}"]} if status == "fail" else {}))
    return {"schema": "nimwarden/summary/v1", "target": "big", "started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:01:00Z",
            "results": results, "deployments": [{"name": f"w{k}", "kind": "nim", "expect": "compliant"} for k in range(40)],
            "totals": {}}


def test_a_large_report_lists_failures_one_by_one_and_counts_the_rest():
    summary = _big_summary(grouped.ONE_BY_ONE_UP_TO + 500)
    page = render_html(summary, catalog={})
    fails = sum(1 for r in summary["results"] if r["status"] == "fail")
    assert page.count('<details class="result st-fail"') == fails
    assert 'class="result st-not_applicable"' not in page and 'id="grouped"' in page
    # not applicable results of one control are one row, whatever deployment their reason names
    assert page.count("deployment … declares no endpoints") == 25
    small = render_html(_big_summary(300), catalog={})
    assert 'id="grouped"' not in small and 'class="result st-not_applicable"' in small


def test_the_streamed_oscal_document_is_the_built_one(tmp_path):
    for summary in (_big_summary(400), {**_big_summary(10), "results": [r for r in _big_summary(10)["results"] if r["status"] != "fail"]}):
        path = oscal.write_oscal(tmp_path, summary)
        assert json.loads(path.read_text(encoding="utf-8")) == oscal.build_oscal(summary)


def test_verdicts_are_derived_again_when_a_result_changes_in_place():
    summary = _big_summary(200)
    assert gating.exit_status(summary) == gating.EXIT_FAILURE
    for r in summary["results"]:
        if r["status"] == "fail":
            r["status"] = "waived"
    assert gating.exit_status(summary) == gating.EXIT_OK


def test_bindings_from_another_namespace_users_and_groups_still_grant(tmp_path):
    (tmp_path / "rbac.yaml").write_text("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: a}
spec: {selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: x}}, spec: {serviceAccountName: sa, containers: [{name: c, image: i}]}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: execer, namespace: b}
rules: [{apiGroups: [""], resources: [pods/exec], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: from-b, namespace: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: execer}
subjects: [{kind: ServiceAccount, name: sa, namespace: a}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: escalator}
rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [escalate]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: by-user}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: escalator}
subjects: [{kind: User, name: "system:serviceaccount:a:sa"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: by-group}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: Group, name: "system:serviceaccounts:a"}]
""")
    state = load_manifests([tmp_path])
    found, _ = rbac.grants(state, "a", "sa")
    assert {g.binding for g in found} == {"RoleBinding/b/from-b", "ClusterRoleBinding/by-user", "ClusterRoleBinding/by-group"}
    assert rbac.grants(state, "b", "sa")[0] == []


def test_a_service_selects_only_in_its_own_namespace(tmp_path):
    body = ("apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: {ns}}}\nspec: {{selector: {{app: x}}, ports: [{{port: 80}}]}}\n"
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: {ns}}}\n"
            "spec: {{selector: {{matchLabels: {{app: x}}}}, template: {{metadata: {{labels: {{app: x}}}}, spec: {{containers: [{{name: c, image: i}}]}}}}}}\n")
    (tmp_path / "a.yaml").write_text(body.format(ns="a"))
    (tmp_path / "b.yaml").write_text(body.format(ns="b").replace("kind: Deployment", "kind: StatefulSet"))
    state = load_manifests([tmp_path])
    templates = pod_templates(state)
    a = [t for t in templates if t.owner.namespace == "a"]
    assert [s.ref for s in exposure.workload_services(state, a)] == ["Service/a/s"]
    assert [s.ref for s in exposure.workload_services(state, templates)] == ["Service/a/s", "Service/b/s"]  # the state's order


def test_the_generated_repository_audits_with_every_workload_judged(tmp_path, capsys):
    bench = load_benchmark("repo_scale")
    profile, files, objects = bench.generate(tmp_path, 6)
    assert files == 7 and objects > 55
    assert cli.main(["audit", "--target", str(profile), "--reports-dir", str(tmp_path / "reports")]) == 1
    summary = json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text())
    judged = {r["deployment"] for r in summary["results"] if r["status"] in ("pass", "fail")} - {"-"}  # "-": target-wide
    assert judged == {d["name"] for d in yaml.safe_load(profile.read_text())["deployments"]}
    assert summary["totals"]["error"] == 0


LINES_DOC = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
data:
  config.yaml: |
    auth:
      enabled: false
  list:
    - a
    - b: 1
      c: [1, 2]
  again: &shared {k: v}
  alias: *shared
"""


def test_an_object_keeps_the_lines_of_its_yaml_not_the_nodes(tmp_path):
    from nimwarden.k8s.manifests import load_file

    path = tmp_path / "cm.yaml"
    path.write_text(LINES_DOC)
    [obj] = load_file(path)
    assert obj.body["data"]["alias"] == {"k": "v"}
    want = {"": 1, "metadata.name": 4, "metadata.missing": 3, "data[config.yaml]": 6, "data[config.yaml].auth.enabled": 8,
            "data.list": 9, "data.list[0]": 10, "data.list[1].b": 11, "data.list[1].c": 12, "data.list[1].c[1]": 12,
            "data.list[7]": 9, "data.list[0].deeper": 10, "data.alias.k": 13, "data.again.k": 13}  # an alias: where its anchor holds the field
    assert {p: obj.line_of(p) for p in want} == want

    def nodes(v):  # nothing of libyaml's node graph is kept
        if isinstance(v, yaml.Node):
            yield v
        elif isinstance(v, dict):
            for x in v.values():
                yield from nodes(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                yield from nodes(x)

    assert isinstance(obj.node, yaml_nodes.Map) and list(nodes(obj.node)) == []


_WORDY = st.text(alphabet=st.sampled_from(list("nvapi-hf_bearr:/BEGINpsswodktecAPKYTS xſıKİ\u212a→é-=\"'")), max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_WORDY, st.text(max_size=40)))
def test_the_quick_trigger_check_says_what_the_pattern_says(text):
    """The substring check on lowered ASCII text stands for the case-insensitive pattern: a text it passes
    over is one no redaction pattern is even tried on, so it must never say no where the pattern says yes."""
    assert redact._triggered(text) == (redact._TRIGGER.search(text) is not None)


@pytest.mark.parametrize("text", ["NVAPI-x", "Hf_", "BeArEr", "http://", "-----begin", "PASSW", "ApiKey", "API_KEY", "TOKEN",
                                  "Secret", "ſecret", "\u212aey token", "plain words", "Deployment/a → b: TOKEN", "api_ıey → x", "é passw"])
def test_the_quick_trigger_check_on_chosen_words(text):
    assert redact._triggered(text) == (redact._TRIGGER.search(text) is not None)


def test_only_four_characters_fold_to_an_ascii_letter():
    """The quick trigger check leaves text with these to the pattern; no other code point case-folds to ASCII."""
    import string

    letters = [re.compile("(?i)" + x) for x in string.ascii_lowercase]
    folding = {chr(cp) for cp in range(0x80, 0x3000) if any(ch in string.ascii_letters for ch in chr(cp).lower())
               or any(p.fullmatch(chr(cp)) for p in letters)}
    assert folding == set(redact._FOLDS_TO_ASCII)
