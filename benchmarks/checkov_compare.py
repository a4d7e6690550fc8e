"""Benchmark: nimwarden's pod-security judges side by side with checkov on the same manifests.

Reports both tools' wall times and, per object, which pod-security topics (privileged, privilege
escalation, non-root, seccomp, capabilities, hostPath, host ports, host namespaces, read-only root)
both tools report, which only nimwarden reports and which only checkov reports. Prints JSON lines.

On the chart corpus (tests/fixtures/charts: manifests shaped like NVIDIA's published charts, as
`helm template` renders them) it also times the whole audit as a user runs it, side by side:
`nimwarden audit --target <the corpus profile>` (a process of its own: start-up, parsing, judging
and every report, split as summary.json's ``timings`` says) against `checkov -d <the same files>`,
each the median of ``--repeat`` runs.

checkov is not a nimwarden dependency. It is looked up as $CHECKOV, then as checkov 3.3.30 in the
cache folder outside the clone (`<cache>/checkov-3.3.30`, created with --install; see
benchmarks/repo_scale.py). When it cannot be found or installed the script says so in a JSON line
and exits 2.

    .venv/bin/python benchmarks/checkov_compare.py [--install] [--deployments 300]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nimwarden.families.pod_security import judge as k8s_context  # noqa: E402
from nimwarden.families.pod_security.pss import evaluate_pod_spec  # noqa: E402
from nimwarden.k8s import load_manifests, pod_templates  # noqa: E402
from tests import corpus as charts  # noqa: E402

LAB = ROOT / "nimwarden" / "lab" / "manifests"

CHECKOV_TOPICS = {
    "CKV_K8S_16": "privileged", "CKV_K8S_20": "privilege-escalation", "CKV_K8S_22": "read-only-root",
    "CKV_K8S_23": "non-root", "CKV_K8S_40": "non-root", "CKV_K8S_31": "seccomp",
    "CKV_K8S_37": "capabilities", "CKV_K8S_39": "capabilities", "CKV_K8S_28": "capabilities", "CKV_K8S_25": "capabilities",
    "CKV_K8S_17": "host-namespaces", "CKV_K8S_18": "host-namespaces", "CKV_K8S_19": "host-namespaces",
    "CKV_K8S_26": "host-ports", "CKV_K8S_27": "host-path",
}
PSS_TOPICS = {
    "privileged": "privileged", "allowPrivilegeEscalation": "privilege-escalation", "runAsNonRoot": "non-root",
    "runAsUser": "non-root", "seccompProfile_restricted": "seccomp", "seccompProfile_baseline": "seccomp",
    "capabilities_restricted": "capabilities", "capabilities_baseline": "capabilities", "hostPathVolumes": "host-path",
    "restrictedVolumes": "host-path", "hostPorts": "host-ports", "hostNamespaces": "host-namespaces",
}


def find_checkov(install: bool) -> tuple[str | None, str]:
    """$CHECKOV, else checkov 3.3.30 in the cache folder outside the clone (benchmarks/repo_scale.py installs it there)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from repo_scale import find_checkov as locate

    return locate(install)


def ours(paths: list) -> tuple[dict[str, set[str]], float, int]:
    t0 = time.perf_counter()
    state = load_manifests(paths)
    templates = pod_templates(state)
    found: dict[str, set[str]] = {}
    for tpl in templates:
        topics = found.setdefault(tpl.ref, set())
        result = evaluate_pod_spec(dict(tpl.metadata), dict(tpl.spec), "restricted", "latest", tpl.spec_path)
        for v in result.violations:
            if v.check == "restrictedVolumes" and not any(p.endswith(".hostPath") for p in v.paths):
                topics.add("pss:restrictedVolumes")
            else:
                topics.add(PSS_TOPICS.get(v.check, f"pss:{v.check}"))
        if k8s_context.read_only_root([tpl]).status.value == "fail":
            topics.add("read-only-root")
        if k8s_context.non_root([tpl]).status.value == "fail":
            topics.add("non-root")
    return found, time.perf_counter() - t0, len(templates)


def checkov(binary: str, directory: Path) -> tuple[dict[str, set[str]], float, dict[str, int]]:
    t0 = time.perf_counter()
    proc = subprocess.run([binary, "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet", "--compact",
                           "--skip-download"], capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - t0
    try:
        doc = json.loads(proc.stdout or "{}")
    except ValueError:
        raise RuntimeError(f"checkov output is not JSON (exit {proc.returncode}): {proc.stderr[-300:]}") from None
    reports = doc if isinstance(doc, list) else [doc]
    found: dict[str, set[str]] = {}
    other: dict[str, int] = {}
    for report in reports:
        for r in (report.get("results") or {}).get("failed_checks") or []:
            kind, _, rest = str(r.get("resource", "")).partition(".")
            ns, _, name = rest.partition(".")
            ref = f"{kind}/{ns}/{name}"
            topic = CHECKOV_TOPICS.get(r.get("check_id"))
            if topic:
                found.setdefault(ref, set()).add(topic)
            else:
                other[r.get("check_id")] = other.get(r.get("check_id"), 0) + 1
    return found, elapsed, other


def compare(a: dict[str, set[str]], b: dict[str, set[str]]) -> dict[str, list[str]]:
    both, only_a, only_b = [], [], []
    for ref in sorted(set(a) | set(b)):
        x, y = a.get(ref, set()), b.get(ref, set())
        both += [f"{ref}: {t}" for t in sorted(x & y)]
        only_a += [f"{ref}: {t}" for t in sorted(x - y)]
        only_b += [f"{ref}: {t}" for t in sorted(y - x)]
    return {"both": both, "nimwarden_only": only_a, "checkov_only": only_b}


def generate(directory: Path, n: int, seed: int = 7) -> None:
    base = yaml.safe_load((LAB / "hardened" / "30-deployment.yaml").read_text())
    rng = random.Random(seed)
    mutations = [
        lambda c, s: c["securityContext"].update(privileged=True),
        lambda c, s: c["securityContext"].pop("allowPrivilegeEscalation"),
        lambda c, s: s["securityContext"].pop("runAsNonRoot") and c["securityContext"].pop("runAsNonRoot"),
        lambda c, s: s["securityContext"].pop("seccompProfile"),
        lambda c, s: c["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
        lambda c, s: s["volumes"].append({"name": "cache", "hostPath": {"path": "/var/cache/nim"}}),
        lambda c, s: s.update(hostNetwork=True),
        lambda c, s: c["ports"].append({"containerPort": 8002, "hostPort": 8002}),
        lambda c, s: c["securityContext"].update(readOnlyRootFilesystem=False),
    ]
    docs = []
    for i in range(n):
        d = copy.deepcopy(base)
        d["metadata"]["name"] = f"triton-{i}"
        spec = d["spec"]["template"]["spec"]
        for m in rng.sample(mutations, k=rng.randint(0, 3)):
            m(spec["containers"][0], spec)
        docs.append(d)
    (directory / "generated.yaml").write_text(yaml.safe_dump_all(docs))


def _without_namespace(found: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ref, topics in found.items():
        parts = ref.split("/")
        out.setdefault(f"{parts[0]}/{parts[-1]}", set()).update(topics)
    return out


def chart_corpus(directory: Path) -> list[tuple[Path, str]]:
    """The corpus's manifests copied into ``directory`` (one folder per chart, as checkov reads them),
    each with the namespace its `helm template -n` gives (the judges read them the same way)."""
    entries = []
    for case, (ns, _selector) in charts.AUDIT.items():
        dst = directory / case / "manifests"
        shutil.copytree(charts.CHARTS / case / "manifests", dst)
        entries.append((dst, ns))
    return entries


def whole_audit(profile: Path, reports: Path, repeat: int) -> dict:
    """`nimwarden audit` of the corpus profile in a fresh process, ``repeat`` times: the median wall time and its split."""
    runs = []
    for i in range(repeat):
        out = reports / f"run{i}"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - t0
        summary = json.loads((out / "latest" / "summary.json").read_text())
        runs.append((wall, summary.get("timings") or {}, proc.returncode, len(summary["results"])))
    runs.sort(key=lambda r: r[0])
    wall, timings, code, results = runs[len(runs) // 2]
    inside = sum(v for k, v in timings.items() if k.endswith("_s"))
    split = {k: v for k, v in timings.items() if k.endswith("_s")}
    split["interpreter_and_exit_s"] = round(max(wall - inside, 0.0), 3)
    return {"wall_s": round(wall, 3), "all_s": [round(r[0], 3) for r in runs], "split": split, "exit_status": code,
            "results": results, "runner": timings.get("runner", "pytest")}


def checkov_runs(binary: str, directory: Path, repeat: int) -> tuple[dict[str, set[str]], float, dict[str, int], list[float]]:
    times, found, other = [], {}, {}
    for _ in range(repeat):
        found, elapsed, other = checkov(binary, directory)
        times.append(elapsed)
    times.sort()
    return found, times[len(times) // 2], other, [round(t, 3) for t in times]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", action="store_true", help="pip install checkov into a private virtualenv if missing")
    ap.add_argument("--deployments", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5, help="whole-audit runs of each tool on the chart corpus (median reported)")
    ap.add_argument("--charts-only", action="store_true", help="only the chart corpus")
    args = ap.parse_args()
    binary, where = find_checkov(args.install)
    if binary is None:
        print(json.dumps({"benchmark": "checkov_compare", "error": where}), flush=True)
        return 2
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        print(json.dumps({"benchmark": "checkov_compare", "error": f"checkov at {binary} ({where}) does not run: {exc}"}), flush=True)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        chart_dir = Path(tmp) / "charts"
        chart_dir.mkdir()
        entries = chart_corpus(chart_dir)
        profile = charts.audit_profile(Path(tmp), charts=chart_dir)  # both tools read the same copies
        audit = whole_audit(profile, Path(tmp) / "reports", args.repeat)
        theirs, theirs_s, other, theirs_all = checkov_runs(binary, chart_dir, args.repeat)
        mine, _mine_s, templates = ours(entries)
        # checkov reads every object without metadata.namespace as "default"; compare by kind and name
        diff = compare(_without_namespace(mine), _without_namespace(theirs))
        files = sum(1 for p in chart_dir.rglob("*") if p.suffix in (".yaml", ".yml"))
        print(json.dumps({"benchmark": "checkov_compare", "corpus": f"charts ({len(entries)} charts, {files} files)",
                          "checkov_version": version, "pod_templates": templates,
                          "nimwarden_whole_audit_s": audit["wall_s"], "nimwarden_runs_s": audit["all_s"], "nimwarden_split_s": audit["split"],
                          "nimwarden_runner": audit["runner"], "nimwarden_results": audit["results"],
                          "checkov_s": round(theirs_s, 3), "checkov_runs_s": theirs_all,
                          "speedup": round(theirs_s / audit["wall_s"], 1) if audit["wall_s"] else None,
                          "both": len(diff["both"]), "nimwarden_only": len(diff["nimwarden_only"]), "checkov_only": len(diff["checkov_only"]),
                          "checkov_other_checks_failed": dict(sorted(other.items())), **diff}), flush=True)
        if args.charts_only:
            return 0
        lab_dir = Path(tmp) / "lab"
        shutil.copytree(LAB, lab_dir)
        gen_dir = Path(tmp) / "generated"
        gen_dir.mkdir()
        generate(gen_dir, args.deployments)
        for corpus, directory in (("lab", lab_dir), (f"generated-{args.deployments}", gen_dir)):
            mine, mine_s, templates = ours([directory])
            theirs, theirs_s, other = checkov(binary, directory)
            diff = compare(mine, theirs)
            line = {"benchmark": "checkov_compare", "corpus": corpus, "pod_templates": templates, "checkov_version": version,
                    "nimwarden_s": round(mine_s, 3), "checkov_s": round(theirs_s, 3),
                    "speedup": round(theirs_s / mine_s, 1) if mine_s else None,
                    "both": len(diff["both"]), "nimwarden_only": len(diff["nimwarden_only"]), "checkov_only": len(diff["checkov_only"]),
                    "checkov_other_checks_failed": dict(sorted(other.items()))}
            if corpus == "lab":
                line.update(diff)
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
