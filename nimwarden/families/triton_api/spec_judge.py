"""Triton flags read from pod specs (family triton-api): the API suite's controls, judged from
the container's command and args, so a misconfiguration is caught even when the endpoint is not
reachable from the probe position.

Defaults are those of tritonserver 2.x (``src/command_line_parser.cc``): model control ``none``,
metrics on, SageMaker/Vertex off, exit-on-error on, strict readiness on, auto-complete on,
gRPC without TLS, tracing off, no restricted APIs.
"""

from __future__ import annotations

import re
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
    image: str = ""

    def server_version(self) -> tuple[int, ...] | None:
        """The tritonserver version of an NGC image tag (``nvcr.io/nvidia/tritonserver:24.01-py3`` → 2.42.0,
        through the release map of the CVE table), None when the tag names no known release."""
        from nimwarden.families.triton_api.cves import load_table, parse_version

        tag = self.image.rsplit(":", 1)[-1] if ":" in self.image.rsplit("/", 1)[-1] else ""
        m = re.match(r"(\d{2}\.\d{2})", tag)
        server = load_table().releases.get(m.group(1)) if m else None
        return parse_version(server) if server else None

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
                out.append(TritonArgs(tpl.ref, str(c.get("name") or path), tpl.source_path(f"{path}.{where}"), flags,
                                      str(c.get("image") or "")))
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
                yield (f"{flag}=true (an extra, separately reachable endpoint; the SageMaker multi-model route ignored "
                       "--http-restricted-api until 2.71.0)"), "high"
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


def _version_text(v: tuple[int, ...] | None, image: str) -> str:
    return ".".join(map(str, v)) if v else f"unknown (image {image or 'not named'})"


def client_shared_memory(templates) -> Outcome:
    """TRITON-SPEC-CLIENTSHM: client shared memory is off. Since 2.68.0 it needs --allow-client-shm; before,
    it is on by default and only restricting the shared-memory API on every protocol closes it."""
    def check(s: TritonArgs):
        version = s.server_version()
        if s.boolean("--allow-client-shm", False):
            yield "--allow-client-shm turns client shared memory on (off by default since 2.68.0)", "high"
            return
        if version is not None and version >= (2, 68, 0):
            return
        http_ok = not s.boolean("--allow-http", True) or "shared-memory" in _restricted(s.flags.get("--http-restricted-api", ()))
        grpc_ok = not s.boolean("--allow-grpc", True) or "shared-memory" in _restricted(s.flags.get("--grpc-restricted-protocol", ()))
        if not (http_ok and grpc_ok):
            where = " and ".join(w for w, ok in (("HTTP", http_ok), ("gRPC", grpc_ok)) if not ok)
            if version is None:
                yield (f"server version {_version_text(version, s.image)}: client shared memory is on by default before 2.68.0 "
                       f"and the shared-memory API is not restricted on {where}"), "medium"
            else:
                yield (f"tritonserver {_version_text(version, s.image)} (before 2.68.0) serves client shared memory by default, "
                       f"and the shared-memory API is not restricted on {where}"), "high"
    return _judge(templates, "client shared memory open",
                  "client shared memory off (2.68.0+ without --allow-client-shm, or the shared-memory API restricted)", check)


MAX_INPUT_DEFAULT = 64 * 1024 * 1024  # --http-max-input-size default since 2.59.0; it also caps the decompressed size


def request_bounds(templates, max_input_bytes: int = MAX_INPUT_DEFAULT) -> Outcome:
    """TRITON-SPEC-BOUNDS: HTTP request bodies are bounded (--http-max-input-size, 2.59.0+, also caps the
    decompressed size); the gRPC response pool bound (--grpc-max-response-pool-size) is recorded."""
    def check(s: TritonArgs):
        version = s.server_version()
        given = s.last("--http-max-input-size")
        if given is not None:
            try:
                size = int(given)
            except ValueError:
                yield f"--http-max-input-size={given} is not a number of bytes", "medium"
                return
            if size <= 0 or size > max_input_bytes:
                yield f"--http-max-input-size={size} allows requests over {max_input_bytes} bytes", "medium"
            return
        if version is None:
            yield (f"server version {_version_text(version, s.image)} and no --http-max-input-size: cannot tell whether "
                   "request bodies are bounded (the 64 MB default exists since 2.59.0)"), "low"
        elif version < (2, 59, 0):
            yield (f"tritonserver {_version_text(version, s.image)} predates --http-max-input-size (2.59.0): request and "
                   "decompressed sizes are unbounded"), "medium"
    outcome = _judge(templates, "HTTP request size unbounded",
                     "HTTP request size bounded (--http-max-input-size, or the 64 MB default of 2.59.0+)", check)
    pools = {f"{s.ref} → {s.container}": s.last("--grpc-max-response-pool-size") or "not set (advised for decoupled models facing untrusted clients)"
             for s in triton_containers(templates)}
    return _with(outcome, grpc_max_response_pool_size=pools)


def openai_frontend(templates) -> Outcome:
    """TRITON-SPEC-OPENAI: Triton's OpenAI-compatible frontend (port 9000) restricts its management APIs
    (--openai-restricted-api, 2.62.0+)."""
    frontends = []
    for tpl in templates:
        for path, c in tpl.containers():
            words = _words(c)
            if any("openai_frontend" in w or w.endswith("openai/main.py") for w in words):
                flags = {w.split("=", 1)[0]: w.split("=", 1)[1] if "=" in w else "" for w in words if w.startswith("--")}
                frontends.append((tpl, path, c, flags))
    if not frontends:
        return not_applicable("no container in the selected workloads runs Triton's OpenAI-compatible frontend",
                              objects=[t.ref for t in templates])
    findings = []
    for tpl, path, c, flags in frontends:
        if "--openai-restricted-api" not in flags:
            findings.append(Finding(tpl.ref, "OpenAI-compatible frontend without --openai-restricted-api (its model "
                                    "management and metrics APIs answer anyone who reaches port 9000)",
                                    tpl.source_path(f"{path}.args" if c.get("args") else f"{path}.command"),
                                    str(c.get("name") or path), "high"))
    return verdict_from(findings, what="OpenAI frontend unrestricted", subjects=sorted({t.ref for t, *_ in frontends}),
                        ok="the OpenAI-compatible frontend restricts its APIs (--openai-restricted-api)")


def _with(outcome: Outcome, **evidence) -> Outcome:
    import dataclasses

    return dataclasses.replace(outcome, evidence={**dict(outcome.evidence), **evidence})
