"""The example profiles in targets/: each one `nimwarden validate` accepts, in the position it describes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nimwarden import cli
from nimwarden.families import load_profile
from nimwarden.k8s import load_manifests
from nimwarden.k8s.discovery import discover

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "targets"


@pytest.fixture(autouse=True)
def _credentials_set(monkeypatch):
    """Where these profiles run, their credential variables are set (a profile whose variable is unset is
    a configuration error at load time): set each one the examples name, with a dummy value."""
    import re

    for profile in TARGETS.glob("*.yaml"):
        for name in re.findall(r"env: ([A-Z][A-Z0-9_]*)", profile.read_text()):
            monkeypatch.setenv(name, "example-value-not-a-secret")


def test_every_profile_in_targets_validates(capsys):
    for profile in sorted(TARGETS.glob("*.yaml")):
        if profile.name.endswith("-waivers.yaml") or profile.name == "lab.yaml":
            continue  # waivers are not profiles; the lab's needs the running lab (its own tests)
        assert cli.main(["validate", "--target", str(profile)]) == 0, profile
    assert "valid target 'staging'" in capsys.readouterr().out


def test_staging_is_the_in_cluster_position_of_deploy_k8s():
    t = load_profile(TARGETS / "staging-incluster.yaml")
    assert t.probe_position == "cluster-internal"
    assert t.kubernetes.source == "live" and t.kubernetes.kubeconfig is None  # the pod's service-account token
    hosts = {e.host for d in t.deployments for e in d.endpoints.values()}
    assert set(t.scope_hosts) == hosts and not t.scope  # names, never a range
    assert all(c.env for d in t.deployments for c in d.credentials.values())
    cronjob = yaml.safe_load((ROOT / "deploy/k8s/cronjob.yaml").read_text())
    args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--target") + 1] == "/etc/nimwarden/target.yaml"  # where the ConfigMap mounts this profile


def test_external_gateway_probes_only_the_gateway():
    t = load_profile(TARGETS / "external-gateway.yaml")
    (d,) = t.deployments
    assert t.probe_position == "external" and t.kubernetes.source == "none"
    assert set(d.endpoints) == {"gateway", "gateway_http"} and set(d.exposure) == set(d.endpoints)
    assert t.scope_hosts == ("triton.example.com",) and d.credentials["gateway"].env == "TRITON_EDGE_TOKEN"


def test_helm_review_matches_what_discovery_finds_and_audits_without_probing(tmp_path):
    t = load_profile(TARGETS / "helm-review.yaml")
    (d,) = t.deployments
    assert t.kubernetes.source == "manifests" and not d.endpoints
    (found,) = discover(load_manifests(t.kubernetes.paths)).found
    assert (found.name, found.kind, found.namespace, found.selector) == (d.name, d.kind, d.kubernetes.namespace, dict(d.kubernetes.selector))
    env = dict(os.environ, PYTHONPATH=str(ROOT), NIMWARDEN_PROGRESS="0")
    env.pop("NIMWARDEN_RUN_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(TARGETS / "helm-review.yaml"),
                           "--reports-dir", str(tmp_path), "--", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    failed = sorted(r["control"] for r in summary["results"] if r["status"] == "fail")
    errors = [(r["control"], "NIM release 1.3.3 (image tag" in r["reason"]) for r in summary["results"] if r["status"] == "error"]
    # its NIM is 1.3.3, whose bundled engines the NIM engine table does not know: NIM-ENGINECVE-001 says so (fail closed)
    assert proc.returncode == 1 and errors == [("NIM-ENGINECVE-001", True)]
    assert failed == ["NETPOL-DEFAULTDENY-001", "NETPOL-EGRESS-001", "NETPOL-METRICS-001", "NETPOL-NIMAPI-001",
                      "NIM-SPEC-QUEUE-001", "NIM-SPEC-SSL-001",  # its NIM sets neither NIM_SSL_MODE nor a queue bound
                      "POD-MODELRO-001"]  # what targets/rendered/nim-llm.yaml says it holds
