"""What counts as a secret in a Kubernetes object, and how one is written out without leaking it.

Snapshots are artifacts: before one is written, every literal value of a secret-named env
variable or ConfigMap key is replaced by its fingerprint (:func:`nimwarden.redact.fingerprint`),
kubectl's last-applied annotation (a full copy of the object) is dropped, and the whole document
passes through :func:`nimwarden.redact.redact`. The fingerprint keeps a ``[sha256:…]`` marker, so
an offline audit of the snapshot still reports the literal secret — redacted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from nimwarden.redact import fingerprint, redact

SECRET_NAME = re.compile(
    r"(?i)(^|_)(NGC_API_KEY|NGC_CLI_API_KEY|HF_TOKEN|HUGGING_FACE_HUB_TOKEN|API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|"
    r"CREDENTIALS?|PRIVATE_KEY|ACCESS_KEY|AUTH)($|_)")
ENV_REFERENCE = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_]*\)$")  # $(VAR): Kubernetes substitutes another variable
REDACTED_MARKER = re.compile(r"\[sha256:[0-9a-f]{8}\]")  # left by nimwarden.redact.fingerprint
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RESTRICTED_FLAGS = ("--http-restricted-api", "--grpc-restricted-protocol")
RESTRICTED_KEY = re.compile(r"--(?:http-restricted-api|grpc-restricted-protocol)[= ][^:\s]*:[^=\s]+=(\S+)")
_KEY_VALUE = re.compile(r"^([^:\s]*:[^=\s]+=)(\S+)$")  # "<categories>:<header>=<key>"


def literal(value: object) -> str | None:
    """A literal value worth judging (not empty, not a $(VAR) reference)."""
    text = "" if value is None else str(value)
    if not text.strip() or ENV_REFERENCE.match(text.strip()):
        return None
    return text


def plainly_public(value: object) -> bool:
    """A value that cannot be a secret whatever its variable is called: a boolean switch
    (``NMP_AUTH_ENABLED=true``) or an http(s) URL with neither credentials nor a query
    (``NMP_AUTH_POLICY_DECISION_POINT_BASE_URL=http://localhost:8080``)."""
    text = str(value).strip()
    if text.lower() in ("true", "false", "yes", "no", "on", "off"):
        return True
    return bool(_PLAIN_URL.fullmatch(text))


_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::\d+)?(?:/[A-Za-z0-9._~/\-]*)?")


def redact_restricted_value(value: str) -> str:
    """``a,b:header=KEY`` with KEY fingerprinted (the value of --http-restricted-api / --grpc-restricted-protocol)."""
    m = _KEY_VALUE.match(value)
    if m and literal(m.group(2)) and not REDACTED_MARKER.search(m.group(2)):
        return f"{m.group(1)}{fingerprint(m.group(2))}"
    return value


def _redact_words(words: list) -> None:
    """Fingerprint restricted-API keys given literally to tritonserver (``--http-restricted-api=a,b:h=KEY``)."""
    for i, w in enumerate(words):
        if not isinstance(w, str):
            continue
        flag_before = i > 0 and words[i - 1] in RESTRICTED_FLAGS
        head, sep, rest = w.partition("=") if w.startswith(RESTRICTED_FLAGS) else ("", "", w)
        if not (flag_before or sep):
            continue
        m = _KEY_VALUE.match(rest)
        if m and literal(m.group(2)) and not REDACTED_MARKER.search(m.group(2)):
            words[i] = f"{head}{sep}{m.group(1)}{fingerprint(m.group(2))}"
        elif " " in w:  # sh -c "tritonserver --http-restricted-api=...:h=KEY ..."
            words[i] = RESTRICTED_KEY.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + fingerprint(m.group(1)), w)


def _walk(node: Any) -> None:
    if isinstance(node, dict):
        for key in ("args", "command"):
            if isinstance(node.get(key), list):
                _redact_words(node[key])
        if isinstance(node.get("name"), str) and "value" in node and SECRET_NAME.search(node["name"]):
            value = literal(node.get("value"))
            if value is not None and not REDACTED_MARKER.search(value) and not plainly_public(value):
                node["value"] = fingerprint(value)
        for child in node.values():
            _walk(child)
    elif isinstance(node, list):
        for child in node:
            _walk(child)


def redact_object(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an API object that is safe to write to disk."""
    out = copy.deepcopy(dict(body))
    annotations = (out.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    if out.get("kind") == "ConfigMap" and isinstance(out.get("data"), dict):
        for key, value in out["data"].items():
            text = literal(value)
            if text is not None and SECRET_NAME.search(str(key)) and not REDACTED_MARKER.search(text):
                out["data"][key] = fingerprint(text)
    _walk(out)  # env entries ({name, value}) anywhere: containers, NIMService spec.env, …
    return redact(out)
