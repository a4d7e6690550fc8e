"""What a model's configuration and metadata disclose, as the one read of them shows it
(:meth:`nimwarden.families.triton_api.probe.TritonProbe.model_documents`, shared by TRITON-CONFIGSECRET
and TRITON-CVE-001's backend detection): the observation types and the secret finder. Pure: this
module reads nothing and imports no probe.

The read (in the probe) uses read-only calls only: ``GET /v2/models/{m}/config`` and ``GET /v2/models/{m}``
(gRPC ``ModelConfig``, ``ModelMetadata``), and the repository index (``POST /v2/repository/index`` /
``RepositoryIndex``: it lists, it loads nothing). Each call is made without credentials first; only
when that is refused, again with the restricted-API key the profile gives. Which models: those the
profile declares, and those the repository index lists when it is readable (at most ``MAX_MODELS``).

A value is secret-looking when it matches one of the redactor's patterns (``nimwarden.redact``:
NGC keys, Hugging Face tokens, bearer tokens, passwords in URLs, private keys, ``password=…``), or
when its name is secret-looking (``*secret*``, ``*token*``, ``*password*``, ``*access_key*`` …, as
whole words: ``max_tokens`` and ``tokenizer_dir`` are not) and the value is not obviously something
else (a number, a boolean, a path, a URL without a password, a ``${VAR}`` reference, under 6
characters). Every such value is registered with the redactor **before** anything is recorded, and
only its fingerprint, never the configuration, goes into the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nimwarden import redact

MAX_MODELS = 16
SECRET_WORDS = frozenset({"secret", "secrets", "token", "password", "passwd", "pwd", "passphrase", "credential",
                          "credentials", "apikey", "accesskey", "secretkey"})
SECRET_PAIRS = ("access_key", "api_key", "private_key", "secret_key", "auth_key", "account_key", "sas_key")
NOT_SECRET = re.compile(r"(?i)^(?:[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?|true|false|yes|no|on|off|none|null|"
                        r"[~.]?/\S*|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)$")
PATTERN_NAMES = ("NGC API key", "Hugging Face token", "bearer token", "password in a URL", "private key", "key=value secret")


def words(name: str) -> list[str]:
    """``awsSecretAccessKey`` / ``AWS_SECRET_ACCESS_KEY`` → ``['aws', 'secret', 'access', 'key']``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def secret_name(name: str) -> bool:
    parts = words(name)
    joined = "_".join(parts)
    return any(w in SECRET_WORDS for w in parts) or any(pair in joined for pair in SECRET_PAIRS)


def plausible_secret(value: str) -> bool:
    v = value.strip()
    if len(v) < 6 or "[sha256:" in v or NOT_SECRET.match(v):
        return False
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*://", v) and not re.search(r"://[^/\s@]+:[^/\s@]+@", v):
        return False  # a URL without a password in it
    return True


@dataclass(frozen=True)
class SecretFinding:
    """One secret-looking value: where it sits, why it looks secret, and its fingerprint (never the value)."""

    where: str  # "parameters.s3_secret_access_key"
    why: str
    fingerprint: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "why": self.why, "value": self.fingerprint}


def _strings(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, f"[{i}]"))
    elif isinstance(node, str):
        yield path, node


def _value_name(path: tuple[str, ...]) -> str:
    """The name a value goes by: a parameter's key for ``parameters.<key>.string_value``."""
    names = [p for p in path if not p.startswith("[")]
    if len(names) >= 2 and names[-1] == "string_value":
        return names[-2]
    return names[-1] if names else ""


def find_secrets(document: Any) -> tuple[SecretFinding, ...]:
    """Every secret-looking value in a model configuration or metadata (as JSON); each is registered
    with the redactor at once, so that no artifact written later can show it."""
    found = []
    for path, value in _strings(document):
        where = ".".join(p for p in path if p != "string_value").replace(".[", "[")
        for (pattern, group), label in zip(redact.PATTERNS, PATTERN_NAMES):
            m = pattern.search(value)
            if m:
                redact.register(m.group(group))
                found.append(SecretFinding(where, f"matches the redactor's {label} pattern", redact.fingerprint(m.group(group))))
                break
        else:
            name = _value_name(path)
            if secret_name(name) and plausible_secret(value):
                redact.register(value.strip())
                found.append(SecretFinding(where, f"secret-looking name {name!r}", redact.fingerprint(value.strip())))
    return tuple(found)


def parameter_names(config: Any) -> tuple[str, ...]:
    params = config.get("parameters") if isinstance(config, dict) else None
    return tuple(sorted(params)) if isinstance(params, dict) else ()


def backend_names(config: Any) -> tuple[str, ...]:
    """The config's ``backend`` and ``platform`` values (``python``, ``tensorrt_plan`` …), as given."""
    if not isinstance(config, dict):
        return ()
    return tuple(sorted({str(config[k]) for k in ("backend", "platform") if config.get(k)}))


# ----------------------------------------------------------------------------------- observations

ANONYMOUS, WITH_KEY, REFUSED, ABSENT, UNKNOWN = "anonymous", "with the restricted-API key", "refused", "absent", "unknown"


@dataclass(frozen=True)
class DocumentRead:
    """What one read of a model's configuration or metadata showed (never the document itself)."""

    model: str
    document: str  # "config" | "metadata"
    call: str
    access: str  # ANONYMOUS | WITH_KEY: read; REFUSED; ABSENT (no such model); UNKNOWN (any other answer)
    status: str
    parameters: tuple[str, ...] = ()
    findings: tuple[SecretFinding, ...] = ()
    backend: tuple[str, ...] = ()  # the config's ``backend`` and ``platform`` (what TRITON-CVE-001 needs)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "document": self.document, "call": self.call, "read": self.access,
                               "status": self.status}
        if self.document == "config" and self.access in (ANONYMOUS, WITH_KEY):
            out["parameters"] = list(self.parameters)
            out["backend"] = list(self.backend)
        if self.findings:
            out["secrets"] = [f.as_dict() for f in self.findings]
        return out


@dataclass(frozen=True)
class ModelDocuments:
    """TRITON-CONFIGSECRET's observation of one deployment over one protocol."""

    protocol: str
    models: tuple[str, ...]  # read, in order
    listed: str  # where the model names came from
    index: str  # how the repository index was read: "anonymous: 1 model", "refused (403)" …
    credential: str | None  # where the restricted-API key came from (None: the profile gives none)
    reads: tuple[DocumentRead, ...]

    def evidence(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "models": list(self.models), "models_from": self.listed,
                "repository_index": self.index, "credential": self.credential or "none configured",
                "reads": [r.as_dict() for r in self.reads]}


# ----------------------------------------------------------------------------------- how an answer reads


def refused_http(status: int) -> bool:
    return status in (401, 403)


def refused_grpc(code: str, details: str) -> bool:
    return code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or (code == "UNAVAILABLE" and "restricted" in details)


def access_of(status: str, text: str, refused: bool) -> str:
    """REFUSED, ABSENT (Triton's own "unknown model" answer) or UNKNOWN (anything else: a proxy page, a 502)."""
    if refused:
        return REFUSED
    if status in ("400", "404", "NOT_FOUND", "INVALID_ARGUMENT") and re.search(r"unknown model|not found", text, re.I):
        return ABSENT
    return UNKNOWN
