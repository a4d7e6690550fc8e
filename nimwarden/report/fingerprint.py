"""Stable identities of findings, so a finding is recognised from one run to the next.

A finding is identified by its control, its deployment and its subject *normalised*: ports that
are handed out rather than chosen are masked (``:*``: NodePorts and ephemeral ports, 30000 and up —
the lab listens on ephemeral ports, a NodePort moves when its Service is recreated; a service port
such as 443 or 8443 is part of what the finding is about and stays) and so are the generated suffixes of
pod names (``triton-7d9f8b6c5d-x2k4q`` is ``triton``: a new ReplicaSet or a rescheduled pod is the
same workload), and so is the process id of a host-family subject (``local:// pid 10189``: a restarted
server is the same server). Trends, the ``--fail-on-new`` gate and SARIF's ``partialFingerprints`` all use it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

# The alphabet Kubernetes draws generated name suffixes from (no vowels, no 0/1/3).
_K = "[bcdfghjklmnpqrstvwxz2456789]"
# name-<pod-template-hash>-<5>: a ReplicaSet's pod, anywhere in the subject (the hash holds a digit)
_RS_POD = re.compile(rf"(?<=[a-z0-9])-(?=[a-z]*[0-9]){_K}{{6,10}}-{_K}{{5}}(?![a-z0-9-])")
# Pod/<ns>/<name>-<5>: a DaemonSet's or Job's pod, only where the subject says it is a pod
_POD_REF = re.compile(rf"(\bPods?/[a-z0-9-]+/[a-z0-9.-]+?)-{_K}{{5}}(?![a-z0-9-])")
# host:port, [v6]:port — but not the "deployment:127.0.0.1" of a scan subject
_PORT = re.compile(r"(?<=[A-Za-z0-9\]]):(\d{1,5})(?![\d.])")
# "<host spec> pid <n>": the host family's server process, whose id changes on every restart
_PID = re.compile(r"(?<= pid )\d+\b")
ASSIGNED_PORTS = 30000  # NodePorts (30000-32767) and the kernel's ephemeral range start here


def _mask(m: re.Match) -> str:
    return ":*" if int(m.group(1)) >= ASSIGNED_PORTS else m.group(0)


def normalize_subject(subject: str) -> str:
    subject = str(subject)
    done = _normalized.get(subject)
    if done is None:
        s = _RS_POD.sub("", subject)
        s = _POD_REF.sub(r"\1", s)
        done = _PID.sub("*", _PORT.sub(_mask, s))
        if len(_normalized) < 100_000:
            _normalized[subject] = done
    return done


_normalized: dict[str, str] = {}


def finding_key(result: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(result.get("control", "")), str(result.get("deployment", "")), normalize_subject(str(result.get("subject", ""))))


def _digest(key: tuple[str, ...]) -> str:
    return hashlib.sha256("|".join(key).encode("utf-8")).hexdigest()[:32]


def fingerprints(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """One fingerprint per result, in order. Two results whose keys coincide once normalised (two
    ports of one host) are told apart by their order among themselves (sorted by the raw subject)."""
    results = list(results)
    keys = [finding_key(r) for r in results]
    out = [_digest(k) for k in keys]
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    for k, idx in groups.items():
        if len(idx) > 1:
            for n, i in enumerate(sorted(idx, key=lambda j: str(results[j].get("subject", "")))):
                out[i] = _digest((*k, str(n))) if n else out[i]
    return out
