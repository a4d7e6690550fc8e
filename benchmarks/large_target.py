"""Large target: a cluster snapshot with many pods and NetworkPolicies, audited by the Kubernetes suites.

Prints one JSON line per run: wall time, peak RSS of the audit process, result counts.
The snapshot is synthetic but shaped like a real one (kubectl get … -o json List): pods spread
over namespaces, half of them compliant, each namespace with default-deny plus allow policies.

    .venv/bin/python benchmarks/large_target.py                    # 10,000 pods, 1,000 policies
    .venv/bin/python benchmarks/large_target.py --pods 2000 --policies 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_SUITES = "test_pod_security or test_secrets or test_rbac or test_spec_ or test_k8s_ or test_network_policy"


def _pod(i: int, ns: str, app: str, compliant: bool) -> dict:
    container = {"name": "server", "image": "nvcr.io/nvidia/tritonserver:25.01-py3",
                 "args": ["tritonserver", "--model-repository=/models"],
                 "ports": [{"containerPort": 8000}, {"containerPort": 8001}]}
    if compliant:
        container["securityContext"] = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    else:
        container["securityContext"] = {"privileged": True}
        container["env"] = [{"name": "LOG_LEVEL", "value": "info"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{app}-{i}", "namespace": ns, "labels": {"app": app, "tier": f"t{i % 7}"}},
            "spec": {"serviceAccountName": "default", "automountServiceAccountToken": not compliant, "containers": [container]}}


def _policy(i: int, ns: str, n_per_ns: int) -> dict:
    if i % n_per_ns == 0:
        spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}  # default deny
    else:
        spec = {"podSelector": {"matchLabels": {"tier": f"t{i % 7}"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": f"t{(i + 1) % 7}"}}},
                                      {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}],
                             "ports": [{"protocol": "TCP", "port": 8000}]}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"policy-{i}", "namespace": ns}, "spec": spec}


def build_snapshot(path: Path, pods: int, policies: int, namespaces: int) -> None:
    names = [f"team-{n}" for n in range(namespaces)]
    items: list[dict] = [{"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns,
                                                              "pod-security.kubernetes.io/enforce": "restricted"}}} for ns in names]
    for i in range(pods):
        ns = names[i % namespaces]
        app = "triton-hardened" if ns == "team-0" and i % 2 == 0 else "triton-exposed" if ns == "team-1" else f"svc-{i % 50}"
        items.append(_pod(i, ns, app, compliant=(app == "triton-hardened" or i % 2 == 0)))
    per_ns = max(1, policies // namespaces)
    items += [_policy(i, names[(i // per_ns) % namespaces], per_ns) for i in range(policies)]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def build_profile(directory: Path, snapshot: Path) -> Path:
    deployments = [{"name": name, "kind": "triton", "expect": "compliant" if name == "hardened" else "noncompliant",
                    "endpoints": {"http": "http://127.0.0.1:9"},
                    "kubernetes": {"namespace": ns, "selector": {"app": f"triton-{name}"}}}
                   for name, ns in (("hardened", "team-0"), ("exposed", "team-1"))]
    profile = directory / "large.yaml"
    profile.write_text(yaml.safe_dump({"name": "large", "scope": ["127.0.0.0/8"], "deployments": deployments,
                                       "kubernetes": {"source": "snapshot", "paths": [str(snapshot)]}}))
    return profile


def audit(profile: Path, reports: Path, *extra: str) -> dict:
    """Run `nimwarden audit` as a child; its own peak RSS comes from wait4's rusage."""
    cmd = [sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(reports), "-k", K8S_SUITES, *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    summary_path = reports / "latest" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return {"exit": proc.returncode, "wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "results": len(summary["results"]) if summary else None, "totals": summary["totals"] if summary else None,
            "output_tail": out.decode(errors="replace")[-1500:] if summary is None else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--policies", type=int, default=1_000)
    p.add_argument("--namespaces", type=int, default=100)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nimwarden-large-") as tmp:
        directory = Path(tmp)
        snapshot = directory / "snapshot.json"
        t0 = time.monotonic()
        build_snapshot(snapshot, args.pods, args.policies, args.namespaces)
        built = time.monotonic() - t0
        row = {"benchmark": "large_target", "pods": args.pods, "policies": args.policies, "namespaces": args.namespaces,
               "snapshot_mib": round(snapshot.stat().st_size / 2**20, 1), "build_s": round(built, 2),
               **audit(build_profile(directory, snapshot), directory / "reports")}
    print(json.dumps({k: v for k, v in row.items() if v is not None}), flush=True)
    return 0 if row["results"] else 1


if __name__ == "__main__":
    sys.exit(main())
