"""Scale: a generated repository of N rendered workloads, audited by nimwarden and by checkov. Prints JSON lines.

The repository is shaped like a GitOps repository of rendered NVIDIA charts: a ``platform/`` folder
with the cluster-scoped objects (Namespaces with their Pod Security labels, ClusterRoles, a CRD), and
one folder per workload, ``apps/<namespace>/<workload>/rendered.yaml``, holding what ``helm template``
gives for it (~10 objects): the workload itself (a nim-llm StatefulSet, a Triton Deployment or a NIM
Operator NIMService with its NIMCache, in turn), its Service, ServiceAccount, Role and RoleBinding,
NetworkPolicy, ConfigMap, Ingress, PodDisruptionBudget and HorizontalPodAutoscaler, with the NGC key
referenced from a Secret (``secretKeyRef``). One in four workloads is hardened; the others carry the
usual mistakes in turn (root, privileged, a wildcard Role, a literal key, a LoadBalancer, an Ingress
without TLS), so every family has failures to find.

For each size, ``nimwarden audit`` of a manifests-only profile with one deployment per workload (every
posture family: pod-security, secrets, rbac, network-policy, ports/tls/gateway exposure, triton-api and
nim-api spec controls, gpu-platform) runs as a child process of its own, and so does
``checkov -d <the same tree> --framework kubernetes -o json``; each line gives both wall times, both
peak RSS (``wait4`` rusage of the child: the largest resident set of that process), the results, and
the ratio. The hypervisor's CPU steal during each run (``/proc/stat``) is given beside it.

checkov is not a dependency: it is looked up as $CHECKOV, then in ``<cache>/checkov-3.3.30`` (the
cache folder of :mod:`nimwarden.lab.cache`, outside the clone), created there with ``--install``.

    flock /tmp/nimwarden-lab.lock .venv/bin/python benchmarks/repo_scale.py --sizes 200,500,1000,2000 --install
    .venv/bin/python benchmarks/repo_scale.py --sizes 200 --no-checkov --keep /tmp/repo   # only nimwarden, keep the tree
    .venv/bin/python benchmarks/repo_scale.py --sizes 2000 --repeat 0 --no-checkov --discover   # only discovery
    .venv/bin/python benchmarks/repo_scale.py --sizes 2000 --no-checkov --nightly   # a first run, then one compared with it
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nimwarden.lab.cache import cache_dir  # noqa: E402

CHECKOV_VERSION = "3.3.30"
WORKLOADS_PER_NAMESPACE = 10
MISTAKES = ("root", "privileged", "wildcard-role", "literal-key", "loadbalancer", "plain-ingress")
NIM_IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:2.1.6"  # a release the NIM engine table maps (an unknown one is an error)
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.01-py3"


# ------------------------------------------------------------------------------------------ the tree


def _labels(name: str, chart: str) -> dict:
    return {"helm.sh/chart": chart, "app.kubernetes.io/name": chart.rsplit("-", 1)[0], "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "Helm"}


def _security(hardened: bool, mistake: str) -> tuple[dict, dict]:
    """(pod securityContext, container securityContext)."""
    if hardened:
        return ({"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}})
    pod = {"fsGroup": 1000, "runAsUser": 0 if mistake == "root" else 1000}
    container = {"privileged": True} if mistake == "privileged" else {}
    return pod, container


def _container(name: str, image: str, args: list[str] | None, port: int, hardened: bool, mistake: str, secret: str) -> dict:
    env = [{"name": "NIM_CACHE_PATH", "value": "/model-store"}]
    if mistake == "literal-key" and not hardened:
        env.append({"name": "NGC_API_KEY", "value": "nvapi-" + "x7Kq2" * 12})  # a fake, generated key: the literal-secret mistake
    else:
        env.append({"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "NGC_API_KEY"}}})
    c = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "env": env,
         "ports": [{"containerPort": port, "name": "http"}, {"containerPort": port + 2, "name": "metrics"}],
         "resources": {"limits": {"nvidia.com/gpu": 1}},
         "volumeMounts": [{"name": "model-store", "mountPath": "/model-store", "readOnly": hardened}],
         "livenessProbe": {"httpGet": {"path": "/v1/health/live", "port": "http"}},
         "readinessProbe": {"httpGet": {"path": "/v1/health/ready", "port": "http"}}}
    if args:
        c["args"] = args
    c["securityContext"] = _security(hardened, mistake)[1]
    return c


def workload_objects(i: int, ns: str) -> tuple[list[dict], dict]:
    """The rendered objects of workload ``i`` and its deployment entry for the profile."""
    shape = ("nim-llm", "triton", "nimservice")[i % 3]
    hardened = i % 4 == 0
    mistake = MISTAKES[i % len(MISTAKES)]
    name = f"{shape}-{i}"
    chart = {"nim-llm": "nim-llm-1.3.0", "triton": "triton-inference-server-1.0.0", "nimservice": "nim-service-1.0.0"}[shape]
    labels = _labels(name, chart)
    # the NIM Operator labels a NIMService's pods app.kubernetes.io/name=<the NIMService's name>
    selector = ({"app.kubernetes.io/name": name} if shape == "nimservice"
                else {"app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": name})
    meta = {"name": name, "namespace": ns, "labels": labels}
    secret = "ngc-api"
    objects: list[dict] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta), "automountServiceAccountToken": not hardened},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": f"{name}-config"},
         "data": {"NIM_LOG_LEVEL": "INFO", "NIM_JSONL_LOGGING": "1", "model_config.yaml": "max_batch_size: 8\nprofile: throughput\n"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}] if (mistake == "wildcard-role" and not hardened)
         else [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": dict(meta),
         "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
                               "ports": [{"protocol": "TCP", "port": 8000}]}],
                  "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 443}]}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": dict(meta),
         "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}}},
    ]
    pod_sc, _ = _security(hardened, mistake)
    if shape == "nimservice":
        objects.append({"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMCache", "metadata": {"name": f"{name}-cache", "namespace": ns},
                        "spec": {"source": {"ngc": {"modelPuller": NIM_IMAGE, "pullSecret": "ngc-secret", "authSecret": secret}},
                                 "storage": {"pvc": {"create": True, "storageClass": "standard", "size": "50Gi", "volumeAccessMode": "ReadWriteOnce"}}}})
        spec = {"image": {"repository": NIM_IMAGE.rsplit(":", 1)[0], "tag": NIM_IMAGE.rsplit(":", 1)[1], "pullSecrets": ["ngc-secret"]},
                "authSecret": secret, "storage": {"nimCache": {"name": f"{name}-cache"}, "readOnly": hardened},
                "resources": {"limits": {"nvidia.com/gpu": 1}},
                "expose": {"service": {"type": "LoadBalancer" if mistake == "loadbalancer" and not hardened else "ClusterIP", "port": 8000},
                           "ingress": {"enabled": True, "spec": {"ingressClassName": "nginx", "rules": [{"host": f"{name}.example.com", "http": {
                               "paths": [{"path": "/v1/chat/completions", "pathType": "Prefix",
                                          "backend": {"service": {"name": name, "port": {"number": 8000}}}}]}}],
                               **({} if mistake == "plain-ingress" and not hardened else {"tls": [{"hosts": [f"{name}.example.com"], "secretName": f"{name}-tls"}]})}}}}
        if hardened:
            spec["userID"], spec["groupID"] = 1000, 2000
        objects.append({"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMService", "metadata": dict(meta), "spec": spec})
    else:
        port = 8000
        if shape == "triton":
            container = _container("triton", TRITON_IMAGE, ["tritonserver", "--model-repository=/model-store",
                                                               "--model-control-mode=" + ("none" if hardened else "explicit"),
                                                               "--allow-metrics=" + ("false" if hardened else "true")],
                                   port, hardened, mistake, secret)
            container["ports"] = [{"containerPort": 8000, "name": "http"}, {"containerPort": 8001, "name": "grpc"},
                                  {"containerPort": 8002, "name": "metrics"}]
            kind, extra = "Deployment", {}
        else:
            container = _container("nim-llm", NIM_IMAGE, None, port, hardened, mistake, secret)
            kind, extra = "StatefulSet", {"serviceName": f"{name}-sts", "podManagementPolicy": "Parallel"}
        pod_spec = {"serviceAccountName": name, "imagePullSecrets": [{"name": "ngc-secret"}], "securityContext": pod_sc,
                    "containers": [container],
                    "volumes": [{"name": "model-store", "persistentVolumeClaim": {"claimName": f"{name}-store"}}]}
        if hardened:
            pod_spec["automountServiceAccountToken"] = False
        objects.append({"apiVersion": "apps/v1", "kind": kind, "metadata": dict(meta),
                        "spec": {"replicas": 1, "selector": {"matchLabels": selector}, **extra,
                                 "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec}}})
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
                        "spec": {"type": "LoadBalancer" if mistake == "loadbalancer" and not hardened else "ClusterIP",
                                 "ports": [{"port": 8000, "targetPort": "http", "name": "http"}], "selector": dict(selector)}})
        ingress = {"ingressClassName": "nginx", "rules": [{"host": f"{name}.example.com", "http": {"paths": [
            {"path": "/" if mistake == "plain-ingress" and not hardened else "/v1/chat/completions", "pathType": "Prefix",
             "backend": {"service": {"name": name, "port": {"number": 8000}}}}]}}]}
        if hardened or mistake != "plain-ingress":
            ingress["tls"] = [{"hosts": [f"{name}.example.com"], "secretName": f"{name}-tls"}]
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": dict(meta), "spec": ingress})
        objects.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": dict(meta),
                        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name}, "minReplicas": 1, "maxReplicas": 4}})
    deployment = {"name": name, "kind": "triton" if shape == "triton" else "nim", "expect": "compliant" if hardened else "noncompliant",
                  "kubernetes": {"namespace": ns, "selector": selector}}
    return objects, deployment


def platform_objects(namespaces: list[str]) -> list[dict]:
    out: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
        "kubernetes.io/metadata.name": ns, "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}} for ns in namespaces]
    out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "nim-metrics-reader"},
                "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]})
    out.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "nimservices.apps.nvidia.com"},
                "spec": {"group": "apps.nvidia.com", "names": {"kind": "NIMService", "plural": "nimservices"}, "scope": "Namespaced",
                         "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                       "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    return out


def generate(root: Path, n: int) -> tuple[Path, int, int]:
    """Write the tree and its profile under ``root``; returns (profile, files, objects)."""
    namespaces = [f"team-{k}" for k in range((n + WORKLOADS_PER_NAMESPACE - 1) // WORKLOADS_PER_NAMESPACE)]
    repo = root / "repo"
    (repo / "platform").mkdir(parents=True)
    docs = platform_objects(namespaces)
    (repo / "platform" / "cluster.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    objects, files, deployments = len(docs), 1, []
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for i in range(n):
        ns = namespaces[i // WORKLOADS_PER_NAMESPACE]
        rendered, deployment = workload_objects(i, ns)
        folder = repo / "apps" / ns / deployment["name"]
        folder.mkdir(parents=True)
        (folder / "rendered.yaml").write_text(yaml.dump_all(rendered, Dumper=dumper, sort_keys=False), encoding="utf-8")
        objects += len(rendered)
        files += 1
        deployments.append(deployment)
    profile = root / "repo-scale.yaml"
    profile.write_text(yaml.dump({"name": f"repo-scale-{n}", "deployments": deployments,
                                  "kubernetes": {"source": "manifests", "paths": [str(repo)], "pss_level": "restricted"}},
                                 Dumper=dumper, sort_keys=False), encoding="utf-8")
    return profile, files, objects


# ------------------------------------------------------------------------------------------ measuring


def steal() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def measured(cmd: list[str], **kwargs) -> dict:
    """Run ``cmd`` as a child: its wall time, its own peak RSS (wait4 rusage), exit status, CPU (and the kernel's part:
    creating allure-results/ right after many files were deleted costs up to ten times more, docs/benchmarks.md)
    and the steal meanwhile."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    s0, t0_all = steal()
    t0 = time.perf_counter()
    with open(kwargs.pop("stdout_to", os.devnull), "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, **kwargs)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    s1, t1_all = steal()
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "exit": os.waitstatus_to_exitcode(status),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "sys_s": round(usage.ru_stime, 2),
            "steal_pct": round(100 * (s1 - s0) / max(t1_all - t0_all, 1), 1), "load_before": load,
            "stderr_tail": err.decode(errors="replace")[-600:]}


def _nimwarden_env() -> dict:
    # As a user's shell runs it: with bytecode written and reused. An environment that sets PYTHONDONTWRITEBYTECODE
    # (some CI images and sandboxes do) recompiles ~120 modules on every start: +0.2-0.3 s of start-up, not ours.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(ROOT)}


def nimwarden_audit(profile: Path, reports: Path) -> dict:
    row = measured([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(reports)],
                   cwd=ROOT, env=_nimwarden_env(), stdout_to=str(reports.parent / "nimwarden.out"))
    summary_path = reports / "latest" / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        row.update(results=len(summary["results"]), totals=summary["totals"], timings=summary.get("timings"),
                   compared_with=(summary.get("baseline") or {}).get("source"),
                   report_mib=round(sum(p.stat().st_size for p in (reports / "latest").resolve().rglob("*") if p.is_file()) / 2**20, 1))
    if row["exit"] not in (0, 1):
        row["output_tail"] = (reports.parent / "nimwarden.out").read_text(errors="replace")[-800:]
    else:
        row.pop("stderr_tail")
    return row


def nimwarden_discover(tree: Path, out: Path) -> dict:
    """``nimwarden discover --manifests <tree>``: a profile with one deployment per workload and apply unit."""
    row = measured([sys.executable, "-m", "nimwarden.cli", "discover", "--manifests", str(tree), "--out", str(out), "--force"],
                   cwd=ROOT, env=_nimwarden_env())
    if out.exists():
        row["deployments"] = len((yaml.safe_load(out.read_text(encoding="utf-8")) or {}).get("deployments") or ())
    if row["exit"] == 0:
        row.pop("stderr_tail")
    return row


def find_checkov(install: bool) -> tuple[str | None, str]:
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"], "$CHECKOV"
    venv = cache_dir() / f"checkov-{CHECKOV_VERSION}"
    binary = venv / "bin" / "checkov"
    if binary.exists():
        return str(binary), str(venv)
    if not install:
        return None, f"checkov not found in {venv}; pass --install (pip install checkov=={CHECKOV_VERSION} there) or set $CHECKOV"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"], check=True, capture_output=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"checkov could not be installed into {venv}: {exc}"
    return (str(binary), str(venv)) if binary.exists() else (None, f"{binary} missing after pip install")


def checkov_audit(binary: str, tree: Path, out: Path) -> dict:
    row = measured([binary, "-d", str(tree), "--framework", "kubernetes", "-o", "json", "--quiet", "--compact", "--skip-download"],
                   stdout_to=str(out))
    try:
        doc = json.loads(out.read_text(encoding="utf-8") or "{}")
        reports = doc if isinstance(doc, list) else [doc]
        row["failed_checks"] = sum(int((r.get("summary") or {}).get("failed") or 0) for r in reports)
        row["passed_checks"] = sum(int((r.get("summary") or {}).get("passed") or 0) for r in reports)
        row.pop("stderr_tail")
    except ValueError:
        row["error"] = "checkov's output is not JSON"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,500,1000,2000", help="workload counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=1, help="nimwarden audits per size (the median is reported; 0: none)")
    ap.add_argument("--no-checkov", action="store_true")
    ap.add_argument("--install", action="store_true", help=f"pip install checkov=={CHECKOV_VERSION} into the cache folder if missing")
    ap.add_argument("--keep", help="write the trees here and keep them (default: a temporary folder)")
    ap.add_argument("--discover", action="store_true", help="also time `nimwarden discover --manifests` of each tree")
    ap.add_argument("--nightly", action="store_true",
                    help="audit once more into the first run's reports folder: a nightly run, compared with the run before it")
    args = ap.parse_args(argv)
    binary = None
    if not args.no_checkov:
        binary, where = find_checkov(args.install)
        if binary is None:
            print(json.dumps({"benchmark": "repo_scale", "error": where}), flush=True)
            return 2
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
    with tempfile.TemporaryDirectory(prefix="nimwarden-scale-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for n in (int(s) for s in args.sizes.split(",")):
            root = base / f"n{n}"
            t0 = time.perf_counter()
            profile, files, objects = generate(root, n)
            row = {"benchmark": "repo_scale", "workloads": n, "files": files, "objects": objects,
                   "tree_mib": round(sum(p.stat().st_size for p in (root / "repo").rglob("*.yaml")) / 2**20, 1),
                   "generate_s": round(time.perf_counter() - t0, 2), **machine}
            runs = [nimwarden_audit(profile, root / f"reports-{k}") for k in range(args.repeat)]
            runs.sort(key=lambda r: r["wall_s"])
            if runs:
                row["nimwarden"] = runs[len(runs) // 2]
            if args.repeat > 1:
                row["nimwarden_runs_s"] = [r["wall_s"] for r in runs]
            if args.nightly and runs:
                row["nightly"] = nimwarden_audit(profile, root / "reports-0")
            if args.discover:
                row["discover"] = nimwarden_discover(root / "repo", root / "discovered.yaml")
            if binary:
                row["checkov"] = checkov_audit(binary, root / "repo", root / "checkov.json")
                if runs:
                    row["speedup"] = round(row["checkov"]["wall_s"] / max(row["nimwarden"]["wall_s"], 0.01), 1)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
