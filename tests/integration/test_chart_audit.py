"""`nimwarden audit` of the real-world chart corpus (tests/fixtures/charts) as a user runs it: one
manifests-only profile (no scope, no endpoints), every chart a deployment, in a subprocess."""

from __future__ import annotations

import json

import pytest
import yaml

from tests import corpus
from tests.conftest import run_audit


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chart-audit")
    proc, summary = run_audit(corpus.audit_profile(tmp), tmp / "reports")
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, summary, tmp / "reports" / "latest"


def test_every_chart_is_judged_and_nothing_errs(audit):
    proc, summary, _ = audit
    # The only errors: NIM-ENGINECVE-001 on NIM for LLMs 1.x images, whose bundled engines the NIM engine table does
    # not map (it says so: fail closed); nothing else errs.
    errors = [r for r in summary["results"] if r["status"] == "error"]
    assert [(r["control"], "is not in the NIM engine table" in r["reason"]) for r in errors] == [("NIM-ENGINECVE-001", True)] * len(errors)
    verdicts = {d["name"]: d["verdict"] for d in summary["deployments"]}
    assert set(verdicts) == {c for c, (_, sel) in corpus.AUDIT.items() if sel is not None} | set(corpus.EXTRA)
    assert set(verdicts.values()) == {"non-compliant as expected"}
    # the unbound nimbuild-admin-role is the target-wide failure: exit 1
    [unbound] = [r for r in summary["results"] if r["control"] == "RBAC-UNBOUNDROLE-001"]
    assert unbound["deployment"] == "-" and unbound["status"] == "fail" and unbound["subject"] == "ClusterRole/nimbuild-admin-role"
    assert proc.returncode == 1


def test_deployment_results_agree_with_the_per_object_expectations(audit):
    _, summary, _ = audit
    by = {(r["deployment"], r["control"]): r for r in summary["results"]}
    for case, (_, selector) in corpus.AUDIT.items():
        if selector is None or case in ("nim-operator-sample-nimpipeline", "nim-operator-sample-nimservice", "triton-aws"):
            continue  # these run under a namespace of their own here; their objects are compared in tests/unit/test_chart_corpus.py
        want = corpus.expected(case)["overall"]
        for control in ("POD-PRIVESC-001", "POD-HOSTPATH-001", "SECRETS-PULL-001", "RBAC-SECRETS-001", "TLS-K8SROUTE-001"):
            got = by[(case, control)]["status"]
            if case == "triton-k8s-onprem" and control == "RBAC-SECRETS-001":  # the failing role is Traefik's
                got = by[("triton-k8s-onprem-traefik", control)]["status"]
            if want[control] == "not_applicable":
                continue  # per object: no role or route in the chart; per deployment the control may still pass
            # a chart's helm test pods are judged apart: the deployment's verdict is its workload's
            assert got == want[control] or (want[control] == "fail" and got == "pass" and case.startswith("nim-llm")), (case, control, got)


def test_helm_hooks_kinds_not_judged_and_sarif_lines(audit):
    _, summary, run_dir = audit
    inventory = summary["kubernetes"]
    # the NIM Operator's NeMo resources are judged (through what the operator renders); a ServiceMonitor is not
    assert "ServiceMonitor" in inventory["not_judged"] and "NemoGuardrail" not in inventory["not_judged"]
    assert "CustomResourceDefinition" not in inventory["not_judged"]
    assert any("(test)" in h for h in inventory["hooks"])
    html = (run_dir / "report.html").read_text()
    assert "not judged" in html and f"ServiceMonitor ({inventory['not_judged']['ServiceMonitor']})" in html
    sarif = json.loads((run_dir / "report.sarif").read_text())
    located = [r for r in sarif["runs"][0]["results"] if "region" in r["locations"][0].get("physicalLocation", {})]
    assert located and all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".yaml") for r in located)
    posture = [r for r in sarif["runs"][0]["results"] if r["properties"]["family"] in ("pod-security", "secrets", "rbac", "ports", "tls", "gateway")]
    assert posture and all(", " not in r["properties"]["subject"] for r in posture)


def test_a_selector_matching_nothing_exits_3_with_the_reason(tmp_path):
    profile = {"name": "miss", "deployments": [{"name": "nim", "kind": "nim", "expect": "compliant",
                                                "kubernetes": {"namespace": "nim", "selector": {"app": "nim-llm"}}}],
               "kubernetes": {"source": "manifests", "default_namespace": "nim",
                              "paths": [str(corpus.CHARTS / "nim-llm-default" / "manifests")]}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(profile))
    proc, summary = run_audit(path, tmp_path / "reports", "-k", "test_pod_security or test_rbac")
    assert proc.returncode == 3, proc.stdout[-2000:]
    [dep] = summary["deployments"]
    assert dep["verdict"] == "could not evaluate" and "nearest found: StatefulSet/nim/my-nim" in dep["why"]
    assert "nearest found: StatefulSet/nim/my-nim" in (tmp_path / "reports" / "latest" / "report.html").read_text()


@pytest.mark.parametrize("case", ["bad-unrendered-chart", "bad-kustomization"])
def test_bad_input_audit_is_one_line_exit_2(tmp_path, case):
    profile = {"name": "bad", "deployments": [{"name": "x", "kind": "nim", "expect": "compliant", "kubernetes": {"namespace": "default"}}],
               "kubernetes": {"source": "manifests", "paths": [str(corpus.CHARTS / case / "manifests")]}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(profile))
    proc, summary = run_audit(path, tmp_path / "reports")
    assert proc.returncode == 2 and summary is None
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_in_process_runner_and_pytest_give_the_same_results(audit, tmp_path):
    _, fast, _ = audit
    assert fast["timings"]["runner"].startswith("in-process") and {"startup_s", "parse_s", "parse_wait_s", "judge_s", "reports_s"} <= set(fast["timings"])
    proc, slow = run_audit(corpus.audit_profile(tmp_path), tmp_path / "reports", env={"NIMWARDEN_RUNNER": "pytest"})
    assert slow is not None and "timings" not in slow, proc.stdout[-2000:]

    def key(summary):
        return {r["nodeid"]: (r["status"], r["subject"], r["reason"], r["severity"], json.dumps(r["evidence"], sort_keys=True))
                for r in summary["results"]}

    a, b = key(fast), key(slow)
    assert set(a) == set(b)
    assert {n: a[n] for n in a if a[n] != b[n]} == {}
    assert [d["verdict"] for d in fast["deployments"]] == [d["verdict"] for d in slow["deployments"]]
    assert fast["exit_status"] == slow["exit_status"] == proc.returncode
    for artifact in ("junit.xml", "allure-results", "report.html", "report.sarif", "oscal-assessment-results.json"):
        assert (tmp_path / "reports" / "latest" / artifact).exists()


def test_judged_in_two_processes_the_results_are_the_same_in_the_same_order(audit, tmp_path):
    """The chart corpus is below the size where judging forks; forced to fork, it gives the same results
    (order included), verdicts and exit status as judged in one process."""
    _, one, _ = audit
    assert one["timings"]["runner"].endswith("judged by one process)")
    proc, two = run_audit(corpus.audit_profile(tmp_path), tmp_path / "reports", env={"NIMWARDEN_JUDGE_PROCESSES": "2"})
    assert two is not None and two["timings"]["runner"].endswith("judged by two processes)"), proc.stdout[-2000:]
    assert "manifests read by a second process" in two["timings"]["runner"]  # forced too: the objects came back pickled
    assert "second process" not in one["timings"]["runner"]  # 0.3 MiB of manifests: read by the auditing process

    def rows(summary):
        return [(r["nodeid"], r["status"], r["subject"], r["reason"], json.dumps(r["evidence"], sort_keys=True)) for r in summary["results"]]

    assert rows(one) == rows(two)
    assert [d["verdict"] for d in one["deployments"]] == [d["verdict"] for d in two["deployments"]]
    assert one["exit_status"] == two["exit_status"] == proc.returncode
