"""Hand-built summary.json documents in the contract's shape (docs/architecture.md), for the report tests.

Built by hand on purpose: the report writers must work from a summary file
alone, so their tests must not depend on a live audit.
"""

from __future__ import annotations

import copy
from typing import Any

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def result(control, family, severity, deployment, subject, status, reason, evidence=None, **extra) -> dict[str, Any]:
    out = {
        "control": control,
        "family": family,
        "severity": severity,
        "title": f"title of {control}",
        "deployment": deployment,
        "subject": subject,
        "status": status,
        "reason": reason,
        "evidence": evidence or {},
        "sources": [f"Triton Inference Server — Secure Deployment Considerations: {control}"],
    }
    out.update(extra)
    return out


def lab_summary(started_at: str = "2026-11-22T08:00:00Z") -> dict[str, Any]:
    """Two lab deployments: hardened passes everything, exposed fails in several families."""
    results = [
        result(
            "TRITON-MODELCTL-001", "triton-api", "critical", "hardened", "http://127.0.0.1:18000", "pass",
            "POST /v2/repository/index answered 403 without credentials",
            {"probe": "triton.http", "request": "POST http://127.0.0.1:18000/v2/repository/index", "response_status": 403},
            remediation="Start tritonserver with --model-control-mode=none", duration_s=0.012,
        ),
        result(
            "TRITON-MODELCTL-001", "triton-api", "critical", "exposed", "http://127.0.0.1:18100", "fail",
            "POST /v2/repository/index answered 200 without credentials",
            {
                "probe": "triton.http",
                "request": "POST http://127.0.0.1:18100/v2/repository/index",
                "response_status": 200,
                "response_body": '[{"name":"add","version":"1","state":"READY"}]',
                "observed": 200,
                "expected": [401, 403],
            },
            remediation="Start tritonserver with --model-control-mode=none", duration_s=0.015,
        ),
        result(
            "TLS-VERSION-001", "tls", "high", "hardened", "127.0.0.1:18443", "pass",
            "only TLSv1.2 and TLSv1.3 accepted", {"probe": "tls.handshake", "accepted": ["TLSv1.2", "TLSv1.3"]},
        ),
        result(
            "TLS-VERSION-001", "tls", "high", "exposed", "127.0.0.1:18543", "fail",
            "TLSv1.0 handshake completed",
            {"probe": "tls.handshake", "observed": ["TLSv1", "TLSv1.1", "TLSv1.2"], "expected": ["TLSv1.2", "TLSv1.3"]},
        ),
        result(
            "POD-RUNASNONROOT-001", "pod-security", "high", "hardened", "Deployment/lab/triton-hardened", "pass",
            "runAsNonRoot is true", {"object": "Deployment/lab/triton-hardened", "field": "spec.template.spec.securityContext.runAsNonRoot"},
        ),
        result(
            "POD-RUNASNONROOT-001", "pod-security", "high", "exposed", "Deployment/lab/triton-exposed", "fail",
            "container triton may run as root",
            {
                "object": "Deployment/lab/triton-exposed",
                "field": "spec.template.spec.containers[0].securityContext.runAsNonRoot",
                "file": "nimwarden/lab/manifests/exposed.yaml",
                "line": 27,
                "observed": None,
                "expected": True,
            },
        ),
        result(
            "PORTS-METRICS-001", "ports", "medium", "exposed", "127.0.0.1:18102", "fail",
            "metrics port answers without authentication",
            {"probe": "ports.nmap", "request": "GET http://127.0.0.1:18102/metrics", "response_status": 200,
             "response_body": HOSTILE},
        ),
        result(
            "NETPOL-INGRESS-001", "network-policy", "high", "exposed", "Namespace/lab-exposed", "fail",
            "pods reachable from every namespace",
            {
                "reachability": {
                    "ns/default": {"triton:8000": True, "triton:8002": True},
                    "ns/ingress-nginx": {"triton:8000": True, "triton:8002": True},
                },
            },
        ),
        result(
            "NETPOL-INGRESS-001", "network-policy", "high", "hardened", "Namespace/lab-hardened", "pass",
            "only the gateway reaches the HTTP port",
            {
                "matrix": {
                    "rows": ["ns/default", "ns/ingress-nginx"],
                    "cols": ["triton:8000", "triton:8002"],
                    "cells": [[False, False], [True, False]],
                    "expected": [[False, False], [True, False]],
                },
            },
        ),
        result(
            "PERF-LATENCY-001", "performance", "low", "hardened", "model add (grpc)", "pass",
            "p99 latency 4.1 ms within baseline 6.0 ms",
            {"latencies_ms": [1.0 + (i % 17) * 0.2 for i in range(200)], "baseline_p99_ms": 6.0},
        ),
        result(
            "HOST-UID-001", "host", "medium", "exposed", "process tritonserver (exposed)", "error",
            "could not read /proc/1234/status: permission denied",
            {"probe": "host.proc", "error": "PermissionError: [Errno 13] Permission denied"},
        ),
        result(
            "NIM-METADATA-001", "nim-api", "low", "hardened", "http://127.0.0.1:18000", "not_applicable",
            "not a NIM deployment (kind triton)",
        ),
        result(
            "GATEWAY-RATELIMIT-001", "gateway", "medium", "exposed", "https://127.0.0.1:18543", "fail",
            "60 requests in 1 s all answered 200: no rate limit",
            {"svg": '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'},
        ),
    ]
    totals: dict[str, int] = {s: 0 for s in ("pass", "fail", "error", "skip", "not_applicable", "waived")}
    for r in results:
        totals[r["status"]] += 1
    return {
        "schema": "nimwarden/summary/v1",
        "tool_version": "0.1.0",
        "target": "lab",
        "started_at": started_at,
        "finished_at": started_at.replace("08:00:00", "08:01:10"),
        "interrupted": False,
        "deployments": [
            {"name": "hardened", "kind": "triton", "expect": "compliant", "verdict": "compliant"},
            {"name": "exposed", "kind": "triton", "expect": "noncompliant", "verdict": "non-compliant as expected"},
        ],
        "run": {
            "options": ["--target", "targets/lab.yaml"],
            "host": "ci-runner-7",
            "user": "nightly",
            "catalog_version": "2026.11.1",
            "command": "nimwarden audit --target targets/lab.yaml",
        },
        "exit_status": 3,
        "results": results,
        "totals": totals,
    }


def with_results(summary: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(summary)
    out["results"] = results
    totals = {s: 0 for s in ("pass", "fail", "error", "skip", "not_applicable", "waived")}
    for r in results:
        totals[r["status"]] += 1
    out["totals"] = totals
    return out


FAMILY_CONTROLS = (
    ("ports", "PORTS-K8SEXPOSE-001"), ("tls", "TLS-PROTOCOL-001"), ("gateway", "GATEWAY-AUTHN-001"),
    ("triton-api", "TRITON-MODELCTL-001"), ("nim-api", "NIM-METADATA-001"), ("pod-security", "POD-ROROOT-001"),
    ("secrets", "SECRETS-LITERAL-001"), ("rbac", "RBAC-AUTOMOUNT-001"), ("network-policy", "NETPOL-DEFAULTDENY-001"),
    ("host", "HOST-USER-001"), ("performance", "PERF-STABLE-001"),
)
SEVERITY_CYCLE = ("critical", "high", "medium", "low")


def many_deployments(n: int) -> dict[str, Any]:
    """A target of ``n`` deployments (NVIDIA's charts audited together): every family on each, with a
    spread that is the same every time: deployment i fails i % 5 controls, the worst ones critical."""
    results, deployments = [], []
    for i in range(n):
        name = f"chart-{i:02d}-{('llama', 'triton', 'embed', 'rerank')[i % 4]}"
        deployments.append({"name": name, "kind": "nim" if i % 4 != 1 else "triton", "expect": "compliant"})
        fails = i % 5
        for j, (family, control) in enumerate(FAMILY_CONTROLS):
            failing = j < fails
            status = "fail" if failing else ("error" if (i + j) % 13 == 0 else "pass")
            severity = SEVERITY_CYCLE[(j + i) % 4] if failing else "medium"
            results.append(result(control, family, severity, name, f"Deployment/ns-{i}/{name}", status,
                                  "failed on purpose" if failing else "ok"))
    summary = with_results(lab_summary(), results)
    summary["deployments"] = deployments
    summary["target"] = f"charts-{n}"
    return summary
