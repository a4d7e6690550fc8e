"""The profile's semantic rules, used by the validators of its models: endpoint URLs, the scope,
secrets never inline, credentials that resolve on this machine."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel

from nimwarden.schema.base import SECRET_WORDS, problem

URL_SCHEMES = ("http", "https", "grpc", "grpcs")


def split_endpoint(name: str, url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an endpoint URL, or the problem with it."""
    if "://" not in url:  # "127.0.0.1:8000" would parse as a scheme-less path: every probe would refuse it later
        suggested = "grpc" if name == "grpc" else "http"
        raise problem(f"no scheme in {url!r}; write the URL with one, e.g. {suggested}://{url} (schemes: {', '.join(URL_SCHEMES)})")
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - parses the host part; raises on a malformed one
    except ValueError as exc:
        raise problem(f"not a valid URL ({exc}): {url!r}") from None
    if parts.scheme not in URL_SCHEMES:
        raise problem(f"scheme must be http, https, grpc or grpcs, got {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise problem(f"invalid port in {url!r}") from None
    if not parts.hostname:
        raise problem(f"no host in {url!r}")
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
        if port is None:
            raise problem(f"a {parts.scheme} endpoint needs an explicit port")
    return parts.scheme, parts.hostname, port


def scope_entry(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", value):
            raise problem(f"{value!r} is neither an address, a CIDR nor a host name") from None
    return value


def parse_scope(items: list[str]) -> tuple[tuple, tuple[str, ...]]:
    """``(networks, host names)`` of a validated scope."""
    nets, hosts = [], []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.append(item)
    return tuple(nets), tuple(hosts)


def scope_text(nets: Any, hosts: Any) -> str:
    return ", ".join([*map(str, nets), *hosts])


@lru_cache(maxsize=16)
def declared_names(model: type[BaseModel]) -> frozenset[str]:
    """Every key the schema declares anywhere below ``model``: a declared field is never an inline
    secret, whatever its name says (``secret_max_age_days``, ``options.performance.credential``)."""
    names: set[str] = set()
    seen: set[type] = set()

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
            seen.add(tp)
            for name, info in tp.model_fields.items():
                names.add(info.alias or name)
                visit(info.annotation)
        for arg in get_args(tp):
            visit(arg)

    visit(model)
    return frozenset(names)


def reject_inline_secrets(value: Any, declared: frozenset[str], at: tuple = ()) -> None:
    """Secrets are never allowed inline: refuse keys the schema does not declare whose name says
    secret and that hold a literal value, and URLs that carry a password."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = (*at, str(k))
            if isinstance(v, (str, int)) and SECRET_WORDS.search(str(k)) and k not in declared:
                raise problem("secrets are never allowed inline; reference them with {env: VAR} or {file: PATH}", sub)
            reject_inline_secrets(v, declared, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            reject_inline_secrets(v, declared, (*at, i))
    elif isinstance(value, str) and "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return  # not a URL we can read; the field's own validation says what is wrong
        if password:
            raise problem("URL carries a password; secrets are never allowed inline", at)


def credential_problem(cred: Any) -> tuple[str, str] | None:
    """``(field, problem)`` when a credential's source does not resolve on this machine."""
    if cred.env is not None:
        return None if os.environ.get(cred.env) else ("env", f"environment variable {cred.env} is not set (or is empty)")
    try:
        value = Path(cred.file).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "file", f"{cred.file} does not exist"
    except (OSError, UnicodeDecodeError) as exc:
        return "file", f"{cred.file} cannot be read ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})"
    return None if value else ("file", f"{cred.file} is empty")


