"""What is in play and reachable on a Triton deployment, for TRITON-CVE-001: each observable a CVE's
component needs (``server``, ``server-http``, ``model-load``, ``logging``, ``backend:python`` …) as
(True: observed open / in play, False: observed closed / absent, None: could not observe; the
observation in words), built from :meth:`TritonProbe.exposure_observations` — whose model backends come
from the same one read of the model configurations that TRITON-CONFIGSECRET judges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nimwarden.families.triton_api import judge
from nimwarden.families.triton_api.model_config import ANONYMOUS, WITH_KEY
from nimwarden.outcome import Attempt, Outcome

BACKEND_OF = {"python": "python", "dali": "dali", "tensorrt": "tensorrt", "tensorrt_plan": "tensorrt"}


def _any(states: list[tuple[bool | None, str]], none_seen: str) -> tuple[bool | None, str]:
    """Open anywhere → open; closed everywhere → closed; else unknown (with what was seen)."""
    if not states:
        return False, none_seen
    for s, why in states:
        if s is True:
            return True, why
    if all(s is False for s, _ in states):
        return False, "; ".join(why for _, why in states)
    return None, "; ".join(why for s, why in states if s is None)


def _health(protocol: str, attempts: list[Attempt]) -> tuple[bool | None, str]:
    for a in attempts:
        if not a.completed:
            refused = "refused" in str(a.error).lower()
            return (False if refused else None), f"{protocol} health {a.request}: {a.error}"
        status = getattr(a.observation, "status", None)
        if status not in (200, "OK"):
            return None, f"{protocol} health {a.request} answered {status}"
    return True, f"the {protocol} API answers without credentials ({attempts[0].request})"


def _from_outcome(outcome: Outcome, what: str) -> tuple[bool | None, str]:
    state = {"fail": True, "pass": False}.get(outcome.status.value)
    return state, f"{what}: {outcome.reason}"


def exposure_from(observations: Mapping[str, Any]) -> dict[str, tuple[bool | None, str]]:
    """What the probe saw (``TritonProbe.exposure_observations()``) as in-play states, per observable."""
    out: dict[str, tuple[bool | None, str]] = {}
    health = observations.get("health", {})
    for protocol in ("http", "grpc"):
        out[f"server-{protocol}"] = _health(protocol, health[protocol]) if protocol in health else (False, f"no {protocol} endpoint declared")
    out["server"] = _any([out[f"server-{p}"] for p in health], "no API endpoint declared")
    out["model-load"] = _any([_from_outcome(judge.dynamic_loading_disabled(a), f"model load over {p}")
                              for p, a in observations.get("model-load", {}).items()], "no API endpoint declared")
    for category, by_protocol in observations.get("categories", {}).items():
        out[category] = _any([_from_outcome(judge.category_restricted(category, a), f"{category} API over {p}")
                              for p, a in by_protocol.items()], "no API endpoint declared")
    frontends = observations.get("frontends", {})
    for name in ("sagemaker", "vertex"):
        out[name] = (_from_outcome(judge.frontend_off(name, *frontends[name]), f"{name} front end") if name in frontends
                     else (False, f"the profile declares no {name} endpoint"))
    openai = observations.get("openai")
    if openai is None:
        out["openai"] = (False, "the profile declares no openai endpoint")
    elif openai.completed:
        out["openai"] = (openai.observation.status == 200, f"OpenAI-compatible frontend {openai.request} answered {openai.observation.status}")
    else:
        out["openai"] = (False if "refused" in str(openai.error).lower() else None, f"OpenAI-compatible frontend {openai.request}: {openai.error}")
    seen: dict[str, str] = {}
    unread: list[str] = []
    documents = observations.get("model_documents")
    configs = []
    if documents is not None and not documents.completed:
        unread.append(f"{documents.request}: {documents.error}")
    elif documents is not None:
        configs = [r for r in documents.observation.reads if r.document == "config"]
    for r in configs:
        if r.access not in (ANONYMOUS, WITH_KEY):
            unread.append(f"{r.model} ({r.access}: {r.status})")
            continue
        for n in r.backend:
            if n in BACKEND_OF:
                seen.setdefault(BACKEND_OF[n], f"model {r.model}'s config (read {r.access} over {documents.observation.protocol}) says {n}")
    for backend in ("python", "dali", "tensorrt"):
        if backend in seen:
            out[f"backend:{backend}"] = (True, seen[backend])
        elif unread or not configs:
            out[f"backend:{backend}"] = (None, "model configs not readable: " + (", ".join(unread) or "no model declared or listed"))
        else:
            out[f"backend:{backend}"] = (False, f"no model read uses the {backend} backend")
    return out
