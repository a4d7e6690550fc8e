"""Pure judges for the Triton API suite: observations + policy → Outcome.

Classification of one answer is three-way: ``restricted`` (refused for want
of credentials), ``open`` (the API's own handler answered), ``unknown``
(anything else — a proxy error page, a 502, a reset).  Only ``restricted``
passes a restriction control; ``unknown`` is an error, never a pass.
"""

from __future__ import annotations

import re
from typing import Any

from nimwarden.families.triton_api.probe import ApiAnswer
from nimwarden.outcome import (
    Attempt,
    Outcome,
    errored,
    fail_closed,
    failed,
    not_applicable,
    passed,
)

RESTRICTED, OPEN, UNKNOWN = "restricted", "open", "unknown"

# Messages Triton's own handlers give: the request reached the API.
TRITON_ERROR = re.compile(
    r"failed to load|unknown model|not found|not allowed|explicit model load|Method Not Allowed|"
    r"no model|polling is enabled|Unsupported|invalid", re.I
)


def classify(answer: ApiAnswer) -> str:
    if answer.protocol == "http":
        code = int(answer.status)
        if code in (401, 403):
            return RESTRICTED
        if code in (200, 405):
            return OPEN
        if code in (400, 404, 500, 503) and TRITON_ERROR.search(answer.body) and answer.body.lstrip().startswith("{"):
            return OPEN
        return UNKNOWN
    if answer.status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return RESTRICTED
    if answer.status == "UNAVAILABLE" and "restricted" in answer.body:
        return RESTRICTED
    if answer.status == "OK":
        return OPEN
    if answer.status == "UNAVAILABLE" and "not allowed" in answer.body:
        return OPEN
    if answer.status in ("NOT_FOUND", "INTERNAL", "INVALID_ARGUMENT", "UNIMPLEMENTED", "FAILED_PRECONDITION") and (
        TRITON_ERROR.search(answer.body) or answer.status == "NOT_FOUND"
    ):
        return OPEN
    return UNKNOWN


def _calls_evidence(attempts: list[Attempt[ApiAnswer]]) -> list[dict[str, Any]]:
    out = []
    for a in attempts:
        ev = a.evidence()
        if a.completed:
            ev["classified"] = classify(a.observation)
        out.append(ev)
    return out


@fail_closed
def category_restricted(category: str, attempts: list[Attempt[ApiAnswer]]) -> Outcome:
    """Every call of the category must be refused without credentials."""
    if not attempts:
        return errored(f"no probe was run for the {category} API")
    kinds = [classify(a.observation) for a in attempts]
    evidence = {"calls": _calls_evidence(attempts), "expected": "every call refused (HTTP 401/403, gRPC restricted)"}
    if OPEN in kinds:
        opened = [a.request for a, k in zip(attempts, kinds) if k == OPEN]
        return failed(f"the {category} API answered without credentials: {', '.join(opened)}", **evidence)
    if UNKNOWN in kinds:
        odd = [f"{a.request} → {a.observation.status}" for a, k in zip(attempts, kinds) if k == UNKNOWN]
        return errored(f"unexpected answer from the {category} API, cannot tell whether it is restricted: {', '.join(odd)}", **evidence)
    return passed(f"the {category} API refused every call without credentials", **evidence)


@fail_closed
def dynamic_loading_disabled(attempt: Attempt[ApiAnswer]) -> Outcome:
    """A load of a nonexistent model: refused or 'not allowed' passes; an attempt to load fails."""
    ans = attempt.observation
    evidence = {**attempt.evidence(), "expected": "refused (restricted) or not allowed (model-control-mode none)"}
    kind = classify(ans)
    if kind == RESTRICTED:
        return passed("model load refused without credentials", **evidence)
    if kind == OPEN and re.search(r"not allowed|polling is enabled", ans.body, re.I):
        return passed("the server does not allow explicit model loading (model-control-mode none or poll)", **evidence)
    if kind == OPEN and re.search(r"failed to load|failed to poll", ans.body, re.I):
        return failed("the server tried to load a model on an unauthenticated request: dynamic model loading is enabled", **evidence)
    return errored(f"unexpected answer to a model load request: {ans.status} {ans.body[:120]!r}", **evidence)


@fail_closed
def trace_off(attempt: Attempt) -> Outcome:
    resp = attempt.observation
    evidence = {**attempt.evidence(), "expected": 'trace_level ["OFF"]'}
    if resp.status != 200:
        return errored(f"trace settings not readable (HTTP {resp.status})", **evidence)
    try:
        level = resp.json()["trace_level"]
    except (ValueError, KeyError, TypeError):
        return errored("trace settings answer is not the expected JSON", **evidence)
    levels = [str(x).upper() for x in (level if isinstance(level, list) else [level])]
    evidence["observed"] = {"trace_level": levels}
    if levels == ["OFF"]:
        return passed("tracing is off", **evidence)
    return failed(f"tracing is on (trace_level {levels})", **evidence)


@fail_closed
def health_and_inference(health: list[Attempt], infer: Attempt | None, protocol: str) -> Outcome:
    evidence: dict[str, Any] = {"health": [a.evidence() for a in health]}
    for a in health:
        obs = a.observation
        status = getattr(obs, "status", None)
        if protocol == "http":
            ok = status == 200
        else:
            ok = status == "OK" and ("live: true" in obs.body or "ready: true" in obs.body)
        if not ok:
            return failed(f"health check {a.request} did not succeed ({status})", **evidence)
    if infer is None:
        return not_applicable("health answers; no model is declared for this deployment, so inference was not tried", **evidence)
    evidence["inference"] = infer.evidence()
    status = getattr(infer.observation, "status", None)
    if status in (200, "OK"):
        return passed("health and inference answer", **evidence)
    return failed(f"inference was refused or failed ({status}): restrictions must not cover health or inference", **evidence)


# ---------------------------------------------------------------------------------- metrics

METRIC_MODEL = re.compile(r'model="([^"]+)"')
METRIC_GPU = re.compile(r'gpu_uuid="([^"]+)"')
METRIC_MEMORY = re.compile(r"^(nv_(?:gpu|cpu)_memory_total_bytes)(?:\{[^}]*\})?\s+([0-9.e+]+)", re.M)


def metrics_disclosure(text: str) -> dict[str, Any]:
    models = sorted(set(METRIC_MODEL.findall(text)))
    gpus = sorted(set(METRIC_GPU.findall(text)))
    memory = {name: float(value) for name, value in METRIC_MEMORY.findall(text)}
    traffic = sum(float(v) for v in re.findall(r"^nv_inference_request_success\{[^}]*\}\s+([0-9.e+]+)", text, re.M))
    return {"model_names": models, "gpu_uuids": gpus, "memory_bytes": memory, "successful_requests": traffic}


def metrics_exposure(metrics: Attempt, anchor: Attempt, allowed: bool) -> Outcome:
    """Metrics must not be reachable unless the profile allows it; record what they disclose.

    A refused connection only counts as "not reachable" when the anchor (the
    deployment's HTTP API) answers: otherwise the whole host may be down.
    """
    evidence: dict[str, Any] = {"metrics": metrics.evidence(), "anchor": anchor.evidence(), "allowed_from_this_position": allowed}
    if metrics.completed:
        resp = metrics.observation
        if resp.status == 200 and "# TYPE" in resp.text():
            evidence["disclosed"] = metrics_disclosure(resp.text())
            if allowed:
                return passed("metrics reachable, which the profile allows from this position", **evidence)
            d = evidence["disclosed"]
            return failed(
                f"metrics endpoint answers without credentials and discloses {len(d['model_names'])} model name(s), "
                f"{len(d['gpu_uuids'])} GPU UUID(s) and traffic volume",
                **evidence,
            )
        if resp.status in (401, 403):
            return passed(f"metrics endpoint refuses callers without credentials (HTTP {resp.status})", **evidence)
        return errored(f"metrics endpoint answered HTTP {resp.status} without metrics", **evidence)
    if not anchor.completed:
        return errored(f"metrics endpoint unreachable, but so is the API ({anchor.error}): cannot tell a closed port from a dead host", **evidence)
    if metrics.error and metrics.error.startswith("connection refused"):
        if allowed:
            return failed("the profile expects metrics to be reachable, but the port is closed", **evidence)
        return passed("metrics port refuses connections while the API answers: metrics are not exposed", **evidence)
    return errored(f"metrics probe failed: {metrics.error}", **evidence)


def frontend_off(name: str, probe: Attempt, anchor: Attempt) -> Outcome:
    """SageMaker / Vertex AI front end: closed port (with a live anchor) or a refusal passes."""
    evidence = {"frontend": name, "probe": probe.evidence(), "anchor": anchor.evidence()}
    if probe.completed:
        status = probe.observation.status
        if status in (401, 403):
            return passed(f"{name} front end refuses callers without credentials", **evidence)
        return failed(f"{name} front end is on and answers (HTTP {status})", **evidence)
    if not anchor.completed:
        return errored(f"{name} port unreachable, but so is the API ({anchor.error})", **evidence)
    if probe.error and probe.error.startswith("connection refused"):
        return passed(f"{name} front end is off (port closed while the API answers)", **evidence)
    return errored(f"{name} probe failed: {probe.error}", **evidence)


def sagemaker_invoke_refused(probe: Attempt, anchor: Attempt) -> Outcome:
    """TRITON-SMINVOKE: the SageMaker multi-model invoke route, asked for a nonexistent model without
    credentials: a refusal, or a closed port while the API answers, passes; any other answer means the
    route (which loads models, and ignored --http-restricted-api until 2.71.0) is open."""
    evidence = {"probe": probe.evidence(), "anchor": anchor.evidence(),
                "expected": "HTTP 401/403, or the SageMaker port closed"}
    if probe.completed:
        status = probe.observation.status
        if status in (401, 403):
            return passed(f"the SageMaker invoke route refuses callers without credentials (HTTP {status})", **evidence)
        if status >= 500:
            return errored(f"the SageMaker invoke route answered HTTP {status}: a server error says neither open nor refused", **evidence)
        return failed(f"the SageMaker multi-model invoke route answered HTTP {status} without credentials: it would try to load "
                      "whatever model a caller names (it ignored --http-restricted-api before 2.71.0)", **evidence)
    if not anchor.completed:
        return errored(f"SageMaker port unreachable, but so is the API ({anchor.error})", **evidence)
    if probe.error and probe.error.startswith("connection refused"):
        return passed("the SageMaker front end is off (port closed while the API answers)", **evidence)
    return errored(f"SageMaker invoke probe failed: {probe.error}", **evidence)


# ---------------------------------------------------------------------------------- secrets in model configurations


@fail_closed
def model_config_secrets(attempt: Attempt) -> Outcome:
    """TRITON-CONFIGSECRET: no model configuration or metadata discloses a secret-looking value.

    Critical when anyone who reaches the API reads it (no credentials), high when only holders of
    the restricted-API key do. A document refused even with the key, an answer that is neither
    Triton's document nor its refusal, a declared model that is not there: error. Refused without
    credentials while the profile gives no key: pass, saying that what key holders see was not read.
    """
    from nimwarden.families.triton_api.model_config import ABSENT, ANONYMOUS, REFUSED, UNKNOWN, WITH_KEY

    o = attempt.observation
    evidence = {**attempt.evidence(), "expected": "no secret-looking value in any model configuration or metadata"}
    if not o.models:
        if o.index.startswith("read"):
            return not_applicable(f"the repository index over {o.protocol} lists no model and the profile declares none", **evidence)
        return errored(f"no model to read over {o.protocol}: the profile declares none and the repository index is not readable "
                       f"({o.index}); declare models: in the profile or give the restricted_api credential", **evidence)

    def where(reads) -> str:
        return "; ".join(f"{r.model} {r.document}: " + ", ".join(f"{f.where} ({f.why})" for f in r.findings) for r in reads)

    anonymous = [r for r in o.reads if r.findings and r.access == ANONYMOUS]
    keyed = [r for r in o.reads if r.findings and r.access == WITH_KEY]
    if anonymous:
        return failed(f"model configuration over {o.protocol} discloses secret-looking values to callers without credentials: "
                      f"{where(anonymous)}", severity="critical", **evidence)
    if keyed:
        return failed(f"model configuration over {o.protocol} discloses secret-looking values to holders of the restricted-API key: "
                      f"{where(keyed)}", severity="high", **evidence)
    odd = [f"{r.call} → {r.status}" for r in o.reads if r.access in (UNKNOWN, ABSENT)]
    if odd:
        return errored(f"cannot read every model document over {o.protocol}: {'; '.join(odd)}", **evidence)
    refused = [r for r in o.reads if r.access == REFUSED]
    if refused and o.credential is not None:
        return errored(f"the restricted-API key ({o.credential}) was refused: {', '.join(r.call for r in refused)}; "
                       "cannot see what its holders see", **evidence)
    read = [r for r in o.reads if r.access in (ANONYMOUS, WITH_KEY)]
    how = sorted({r.access for r in read})
    note = ""
    if refused:
        note = (f"; {len(refused)} document(s) refused without credentials, and the profile gives no restricted_api credential, "
                "so what its holders see was not read")
    return passed(f"{len(read)} model document(s) of {len(o.models)} model(s) read over {o.protocol} "
                  f"({', '.join(how) or 'none readable'}): no secret-looking value{note}", **evidence)
