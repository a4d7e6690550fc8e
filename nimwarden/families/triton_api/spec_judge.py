"""Triton flags read from pod specs (family triton-api): the API suite's controls, judged from
the container's command and args, so a misconfiguration is caught even when the endpoint is not
reachable from the probe position.

Defaults are those of tritonserver 2.x (``src/command_line_parser.cc``): model control ``none``,
metrics on, SageMaker/Vertex off, exit-on-error on, strict readiness on, auto-complete on,
gRPC without TLS, tracing off, no restricted APIs.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.k8s.redaction import RESTRICTED_FLAGS, redact_restricted_value
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, not_applicable
from nimwarden.redact import redact_text

SENSITIVE_CATEGORIES = ("model-repository", "shared-memory", "logging", "trace")
TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class TritonArgs:
    ref: str
    container: str
    path: str  # field path of the args/command that carry the flags
    flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag -> every value given ("" for bare flags)

    def last(self, flag: str) -> str | None:
        values = self.flags.get(flag)
        return values[-1] if values else None

    def boolean(self, flag: str, default: bool) -> bool:
        value = self.last(flag)
        if value is None:
            return default
        if value == "" or value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        return default


def _words(container: Mapping) -> list[str]:
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    # sh -c "tritonserver --flag ..." : the server's words live inside one string
    for i, w in enumerate(words):
        if w in ("-c", "-lc") and i + 1 < len(words) and "tritonserver" in words[i + 1]:
            try:
                return shlex.split(words[i + 1])
            except ValueError:
                return words[i + 1].split()
    return words


def parse_tritonserver(words: Sequence[str]) -> dict[str, tuple[str, ...]] | None:
    """Flags given to tritonserver, or None when these words do not start tritonserver."""
    start = next((i for i, w in enumerate(words) if w.rsplit("/", 1)[-1] == "tritonserver"), None)
    if start is None:
        return None
    flags: dict[str, list[str]] = {}
    rest = list(words[start + 1:])
    i = 0
    while i < len(rest):
        w = rest[i]
        if w in ("&&", ";", "|", "||"):
            break
        if w.startswith("--"):
            if "=" in w:
                name, value = w.split("=", 1)
            elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                name, value = w, rest[i + 1]
                i += 1
            else:
                name, value = w, ""
            flags.setdefault(name, []).append(value)
        i += 1
    return {k: tuple(v) for k, v in flags.items()}


def triton_containers(templates: Sequence[PodTemplate]) -> list[TritonArgs]:
    out = []
    for tpl in templates:
        for path, c in tpl.containers():
            flags = parse_tritonserver(_words(c))
            if flags is not None:
                where = "args" if c.get("args") else "command"
                out.append(TritonArgs(tpl.ref, str(c.get("name") or path), tpl.source_path(f"{path}.{where}"), flags))
    return out


def _judge(templates, what: str, ok: str, check) -> Outcome:
    servers = triton_containers(templates)
    if not servers:
        return not_applicable("no container in the selected workloads runs tritonserver", objects=[t.ref for t in templates])
    findings = []
    for s in servers:
        for problem, severity in check(s):
            findings.append(Finding(s.ref, problem, s.path, s.container, severity))
    return verdict_from(findings, what=what, subjects=sorted({s.ref for s in servers}), ok=ok,
                        flags={f"{s.ref} → {s.container}": _shown_flags(s) for s in servers})


def _shown_flags(s: TritonArgs) -> dict[str, list[str]]:
    """Flags for evidence, with restricted-API keys fingerprinted (they are secrets when given literally)."""
    return {k: [redact_restricted_value(v) if k in RESTRICTED_FLAGS else redact_text(v) for v in values]
            for k, values in s.flags.items()}


def _restricted(values: tuple[str, ...]) -> set[str]:
    """Categories named in --http-restricted-api / --grpc-restricted-protocol values (``a,b:key=value``)."""
    cats: set[str] = set()
    for v in values:
        cats.update(c.strip() for c in v.split(":", 1)[0].split(",") if c.strip())
    return cats


def model_control(templates) -> Outcome:
    def check(s: TritonArgs):
        mode = (s.last("--model-control-mode") or "none").lower()
        if mode != "none":
            http_ok = "model-repository" in _restricted(s.flags.get("--http-restricted-api", ()))
            grpc_ok = "model-repository" in _restricted(s.flags.get("--grpc-restricted-protocol", ())) or not s.boolean("--allow-grpc", True)
            if not (http_ok and grpc_ok):
                yield f"--model-control-mode={mode} with the model-repository API unrestricted (dynamic loading runs code)", "critical"
    return _judge(templates, "dynamic model loading open", "model control is none, or the model-repository API is restricted", check)


def restricted_apis(templates) -> Outcome:
    def check(s: TritonArgs):
        if s.boolean("--allow-http", True):
            missing = [c for c in SENSITIVE_CATEGORIES if c not in _restricted(s.flags.get("--http-restricted-api", ()))]
            if missing:
                yield f"HTTP APIs not restricted: {', '.join(missing)} (--http-restricted-api)", "high"
        if s.boolean("--allow-grpc", True):
            missing = [c for c in SENSITIVE_CATEGORIES if c not in _restricted(s.flags.get("--grpc-restricted-protocol", ()))]
            if missing:
                yield f"gRPC protocols not restricted: {', '.join(missing)} (--grpc-restricted-protocol)", "high"
    return _judge(templates, "sensitive APIs not restricted", f"{', '.join(SENSITIVE_CATEGORIES)} restricted on every protocol served", check)


def metrics(templates) -> Outcome:
    def check(s: TritonArgs):
        if s.boolean("--allow-metrics", True):
            addr = s.last("--metrics-address")
            if addr not in ("127.0.0.1", "localhost", "::1"):
                yield f"metrics enabled on {addr or '0.0.0.0'} (--allow-metrics defaults to true)", "medium"
    return _judge(templates, "metrics exposed", "metrics disabled or bound to loopback", check)


def tracing(templates) -> Outcome:
    def check(s: TritonArgs):
        for v in s.flags.get("--trace-config", ()):
            key, _, value = v.partition("=")
            if key.strip() == "level" and value.strip().upper() not in ("", "OFF"):
                yield f"trace level {value} (--trace-config level=OFF expected)", "medium"
        for v in s.flags.get("--trace-level", ()):
            if v.upper() not in ("", "OFF"):
                yield f"--trace-level {v}", "medium"
    return _judge(templates, "tracing enabled", "tracing off", check)


def cloud_endpoints(templates) -> Outcome:
    def check(s: TritonArgs):
        for flag in ("--allow-sagemaker", "--allow-vertex-ai"):
            if s.boolean(flag, False):
                yield f"{flag}=true (extra endpoint; CVE-2026-24207 bypassed --http-restricted-api)", "high"
    return _judge(templates, "SageMaker/Vertex endpoint enabled", "SageMaker and Vertex AI endpoints off", check)


def exit_on_error(templates) -> Outcome:
    def check(s: TritonArgs):
        if not s.boolean("--exit-on-error", True):
            yield "--exit-on-error=false (serves with models that failed to load)", "low"
    return _judge(templates, "exit-on-error off", "exit-on-error on", check)


def strict_readiness(templates) -> Outcome:
    def check(s: TritonArgs):
        if not s.boolean("--strict-readiness", True):
            yield "--strict-readiness=false (ready while models are not)", "low"
    return _judge(templates, "strict readiness off", "strict readiness on", check)


def auto_complete_config(templates) -> Outcome:
    def check(s: TritonArgs):
        if not s.boolean("--disable-auto-complete-config", False):
            yield "auto-complete-config on (model code runs to fill in configuration)", "low"
    return _judge(templates, "auto-complete-config on", "--disable-auto-complete-config given", check)


def grpc_tls(templates) -> Outcome:
    def check(s: TritonArgs):
        if s.boolean("--allow-grpc", True) and not s.boolean("--grpc-use-ssl", False):
            yield "gRPC served without TLS (--grpc-use-ssl)", "medium"
    return _judge(templates, "gRPC without TLS", "gRPC off or served with TLS", check)
