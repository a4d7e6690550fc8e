"""`nimwarden audit` of NeMo workloads from cluster state, as a user runs it: a manifests-only profile over
tests/fixtures/nemo (the NIM Operator's NeMo resources and the NeMo Platform chart, our own files), the nemo
family's suite only. Each NEMO-SPEC control reaches its verdict through the plugin, with the finding's
file and line in the summary; the noncompliant deployments are canaries of the controls they break."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT, run_audit

FIXTURES = ROOT / "tests" / "fixtures" / "nemo"
DEPLOYMENTS = {  # name: (fixture, namespace, selector, must_fail)
    "operator-hardened": ("operator/compliant", "nemo-hardened", {"app.kubernetes.io/managed-by": "k8s-nim-operator"}, []),
    "operator-exposed": ("operator/noncompliant", "nemo-exposed", {"app.kubernetes.io/managed-by": "k8s-nim-operator"},
                         ["NEMO-SPEC-EXPOSE-001", "NEMO-SPEC-NETPOL-001"]),
    "platform-hardened": ("platform/auth-on", "nemo-platform", {"app.kubernetes.io/component": "nmp-api"}, []),
    "platform-exposed": ("platform/auth-off", "nmp", {"app.kubernetes.io/component": "nmp-api"},
                         ["NEMO-SPEC-AUTH-001", "NEMO-SPEC-EXPOSE-001", "NEMO-SPEC-NETPOL-001"]),
    "platform-broken": ("platform/broken", "nmp-broken", {"app": "missing-config"}, []),
}


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nemo-spec")
    profile = {"name": "nemo-spec", "kubernetes": {"source": "manifests",
                                                    "paths": [{"path": str(FIXTURES / f), "namespace": ns} for f, ns, _, _ in DEPLOYMENTS.values()]},
               "deployments": [{"name": n, "kind": "nemo", "expect": "noncompliant" if must else "compliant", "must_fail": must,
                                "kubernetes": {"namespace": ns, "selector": sel}} for n, (_, ns, sel, must) in DEPLOYMENTS.items()]}
    path = tmp / "nemo.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    proc, out = run_audit(path, tmp / "reports", "suites/test_nemo.py", "-k", "spec")
    assert out is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, out


def _by(summary) -> dict[tuple[str, str], dict]:
    return {(r["deployment"], r["control"]): r for r in summary["results"] if r["control"].startswith("NEMO-SPEC-")}


def test_each_control_reaches_its_verdict_through_the_plugin(summary):
    proc, out = summary
    by = _by(out)
    status = {k: r["status"] for k, r in by.items()}
    assert status == {
        ("operator-hardened", "NEMO-SPEC-AUTH-001"): "not_applicable", ("operator-hardened", "NEMO-SPEC-EXPOSE-001"): "pass",
        ("operator-hardened", "NEMO-SPEC-NETPOL-001"): "pass",
        ("operator-exposed", "NEMO-SPEC-AUTH-001"): "not_applicable", ("operator-exposed", "NEMO-SPEC-EXPOSE-001"): "fail",
        ("operator-exposed", "NEMO-SPEC-NETPOL-001"): "fail",
        ("platform-hardened", "NEMO-SPEC-AUTH-001"): "pass", ("platform-hardened", "NEMO-SPEC-EXPOSE-001"): "pass",
        ("platform-hardened", "NEMO-SPEC-NETPOL-001"): "pass",
        ("platform-exposed", "NEMO-SPEC-AUTH-001"): "fail", ("platform-exposed", "NEMO-SPEC-EXPOSE-001"): "fail",
        ("platform-exposed", "NEMO-SPEC-NETPOL-001"): "fail",
        ("platform-broken", "NEMO-SPEC-AUTH-001"): "error", ("platform-broken", "NEMO-SPEC-EXPOSE-001"): "pass",
        ("platform-broken", "NEMO-SPEC-NETPOL-001"): "fail",
    }
    assert all(r["family"] == "nemo" and r["sources"] for r in by.values())
    assert proc.returncode == 1  # platform-broken fails NETPOL (and errs on AUTH): a compliance failure


def test_findings_carry_file_and_line(summary):
    _, out = summary
    by = _by(out)
    auth = by[("platform-exposed", "NEMO-SPEC-AUTH-001")]
    assert auth["subject"] == "ConfigMap/nmp/nmp-nemo-platform-config" and auth["severity"] == "critical"
    assert (auth["evidence"]["file"], auth["evidence"]["line"]) == ("tests/fixtures/nemo/platform/auth-off/rendered.yaml", 22)
    exposed = by[("operator-exposed", "NEMO-SPEC-EXPOSE-001")]
    located = {(loc["object"], loc["file"].rsplit("/", 1)[-1], loc["line"]) for loc in exposed["evidence"]["locations"]}
    assert ("Service/nemo-exposed/datastore", "nemodatastore.yaml", 32) in located
    assert ("Ingress/nemo-exposed/entitystore", "nemoentitystore.yaml", 17) in located
    assert all(loc.get("rendered_from") for loc in exposed["evidence"]["locations"])  # the operator's objects, at the CR's lines


def test_canaries_are_noncompliant_as_expected(summary):
    _, out = summary
    verdicts = {d["name"]: d["verdict"] for d in out["deployments"]}
    assert verdicts["operator-exposed"] == verdicts["platform-exposed"] == "non-compliant as expected"
    assert verdicts["platform-hardened"] == "compliant"
