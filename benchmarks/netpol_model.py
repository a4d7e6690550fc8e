"""Benchmark: the full expected reachability matrix of a large synthetic cluster.

1,000 pods in 50 namespaces with 300 NetworkPolicies (default-deny, gateway,
monitoring, database, matchExpressions, named ports, endPort ranges, ipBlocks),
matrix for the NIM/Triton ports. Acceptance: under 5 s. Prints JSON lines.

    python benchmarks/netpol_model.py [--pods 1000] [--namespaces 50] [--policies 300]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from nimwarden.netpol.matrix import ReachabilityMatrix
from nimwarden.netpol.objects import NAME_LABEL, inventory

NIM_PORTS = [(8000, "TCP"), (8001, "TCP"), (8002, "TCP"), (50051, "TCP")]
APPS = ["nim-llm", "nim-embed", "triton", "nemo-customizer", "nemo-datastore", "postgres", "milvus", "web", "worker", "gateway"]


def make_cluster(n_pods: int, n_ns: int, n_policies: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    objs: list[dict] = []
    namespaces = [f"ns-{i:02d}" for i in range(n_ns)]
    for i, ns in enumerate(namespaces):
        labels = {"team": f"t{i % 7}", "env": "prod" if i % 3 else "dev"}
        if i == 0:
            labels["role"] = "ingress"
        if i == 1:
            labels["role"] = "monitoring"
        objs.append({"kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    for i in range(n_pods):
        ns = namespaces[i % n_ns]
        app = APPS[rnd.randrange(len(APPS))]
        ports = [
            {"name": "http", "containerPort": 8000},
            {"name": "grpc", "containerPort": 8001 if app == "triton" else 50051},
            {"name": "metrics", "containerPort": 8002},
        ]
        objs.append(
            {
                "kind": "Pod",
                "metadata": {"namespace": ns, "name": f"{app}-{i}", "labels": {"app": app, "tier": rnd.choice(["a", "b", "c"])}},
                "spec": {"containers": [{"name": "main", "ports": ports}]},
                "status": {"podIP": f"10.{i // 250}.{(i // 250) % 250}.{i % 250 + 1}"},
            }
        )
    kinds = ["deny", "gateway", "metrics", "db", "exprs", "egress", "range", "ipblock"]
    for j in range(n_policies):
        ns = namespaces[j % n_ns]
        kind = kinds[j % len(kinds)]
        name = f"{kind}-{j}"
        if kind == "deny":
            spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        elif kind == "gateway":
            spec = {"podSelector": {"matchLabels": {"app": rnd.choice(APPS[:4])}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"role": "ingress"}}}], "ports": [{"port": "http"}]}]}
        elif kind == "metrics":
            spec = {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: namespaces[1]}}, "podSelector": {"matchLabels": {"app": "worker"}}}], "ports": [{"port": 8002}]}]}
        elif kind == "db":
            spec = {"podSelector": {"matchLabels": {"app": "postgres"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "nemo-datastore"}}}], "ports": [{"port": 5432}]}]}
        elif kind == "exprs":
            spec = {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["t1", "t2"]}]}, "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}]}]}
        elif kind == "egress":
            spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 443}, {"port": 53, "protocol": "UDP"}, {"port": 53}]}, {"to": [{"namespaceSelector": {"matchLabels": {"team": f"t{j % 7}"}}}], "ports": [{"port": "http"}, {"port": "grpc"}]}]}
        elif kind == "range":
            spec = {"podSelector": {"matchLabels": {"app": "triton"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}], "ports": [{"port": 8000, "endPort": 8001}]}]}
        else:
            spec = {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}
        objs.append({"kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name}, "spec": spec})
    return objs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--policies", type=int, default=300)
    ap.add_argument("--limit-s", type=float, default=5.0)
    args = ap.parse_args()
    objs = make_cluster(args.pods, args.namespaces, args.policies)
    t0 = time.perf_counter()
    inv = inventory(objs)
    t1 = time.perf_counter()
    matrix = ReachabilityMatrix(inv, NIM_PORTS)
    t2 = time.perf_counter()
    total = t2 - t0
    pairs = matrix.pairs
    print(json.dumps({"benchmark": "netpol_model.parse", "objects": len(objs), "seconds": round(t1 - t0, 4)}))
    print(
        json.dumps(
            {
                "benchmark": "netpol_model.matrix",
                "pods": len(inv.pods),
                "namespaces": args.namespaces,
                "policies": len(inv.policies),
                "ports": [f"{p}/{proto}" for p, proto in NIM_PORTS],
                "pairs": pairs,
                "allowed_pairs": matrix.count_allowed(),
                "seconds": round(total, 4),
                "pairs_per_second": round(pairs / total),
                "limit_s": args.limit_s,
                "within_limit": total < args.limit_s,
            }
        )
    )
    raise SystemExit(0 if total < args.limit_s else 1)


if __name__ == "__main__":
    main()
