"""Secret hygiene: every artifact passes through :func:`redact` before it is written.

Two nets: secrets the harness itself knows (credentials it loaded, registered
with :func:`register`), and patterns of secrets a target may expose (NGC API
keys, Hugging Face tokens, bearer tokens, passwords in URLs, private keys).
A redacted value keeps its first and last two characters and a short hash,
so a finding can still say *which* secret was seen without showing it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

_known: set[str] = set()
_lock = threading.Lock()

# (pattern, group): the group is the secret itself; the rest is context kept visible.
PATTERNS = [
    (re.compile(r"(nvapi-[A-Za-z0-9_\-]{8,})"), 1),  # NGC API keys
    (re.compile(r"(hf_[A-Za-z0-9]{10,})"), 1),  # Hugging Face tokens
    (re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/\-]{8,}=*)"), 2),
    (re.compile(r"://([^/\s:@]+:[^/\s@]+)@"), 1),  # user:password@ in URLs
    # a private key to its END line, never past the next BEGIN (one BEGIN after another, none ended, was quadratic:
    # 6.5 s for 155 kB); a key cut off before its END (evidence is truncated) to the end of its base64 body
    (re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----(?:(?:(?!-----BEGIN )[\s\S])*?-----END [A-Z ]*PRIVATE KEY-----"
                r"|[A-Za-z0-9+/=\s\\]*))"), 1),
    (re.compile(r"(?i)((?:password|passwd|api_key|apikey|token|secret)[\"']?\s*[=:]\s*[\"']?)([^&\s\"',}]{6,})"), 2),
]


def fingerprint(secret: str) -> str:
    """A stable, non-reversible label for a secret: ``nv…yz[sha256:1a2b3c4d]``."""
    digest = hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:8]
    if len(secret) < 8:
        return f"…[sha256:{digest}]"
    return f"{secret[:2]}…{secret[-2:]}[sha256:{digest}]"


# Every pattern above needs one of these in the text: one search decides whether the patterns run at all.
_TRIGGER = re.compile(r"(?i)nvapi-|hf_|bearer|://|-----BEGIN|passw|api_?key|token|secret")
_TRIGGER_WORDS = ("nvapi-", "hf_", "bearer", "://", "-----begin", "passw", "apikey", "api_key", "token", "secret")


def _triggered(text: str) -> bool:
    """``_TRIGGER.search(text)``, five times faster (lowered once, then substring tests: a case-insensitive
    alternation costs ~3 µs a text, and a repository audit asks 100,000 times). The two agree on any text
    without the four characters Unicode case folding takes to an ASCII letter (İ ı ſ K: found by trying
    every code point); a text with one of them goes to the regular expression."""
    if not text.isascii() and any(c in text for c in _FOLDS_TO_ASCII):
        return _TRIGGER.search(text) is not None
    low = text.lower()
    for word in _TRIGGER_WORDS:
        if word in low:
            return True
    return False


_FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")


_known_sorted: list[str] = []


# Redacted texts, by text: a run's results repeat the same titles, sources, keys and reasons thousands of
# times. Rebound empty (never cleared in place) whenever a secret is registered, so no text redacted
# before a secret was known is ever reused after; bounded, for a process that redacts without end.
_seen: dict[str, str] = {}
_SEEN_MAX = 400_000


_generation = 0


_known_in_json: list[str] = []  # each known secret as it reads inside a JSON string


def register(secret: str | None) -> None:
    """Remember a secret so that it is redacted wherever it appears later."""
    global _known_sorted, _known_in_json, _seen, _generation
    if secret and len(secret) >= 4:
        with _lock:
            if secret in _known:
                return
            _known.add(secret)
            _known_sorted = sorted(_known, key=len, reverse=True)
            _known_in_json = [json.dumps(s, ensure_ascii=False)[1:-1] for s in _known_sorted]
            _seen = {}
            _generation += 1


def known() -> frozenset[str]:
    """The secrets this process has learnt (a forked judge hands back those it learnt to its parent)."""
    with _lock:
        return frozenset(_known)


def generation() -> int:
    """How many secrets this process has learnt: a value redacted at the current generation needs no second pass."""
    return _generation


def redact_text(text: str) -> str:
    seen = _seen
    done = seen.get(text)
    if done is not None:
        return done
    out = _redact_text(text)
    if len(seen) < _SEEN_MAX:
        seen[text] = out
    return out


def _redact_text(text: str) -> str:
    for secret in _known_sorted:  # rebound (never mutated) under the lock by register()
        if secret in text:
            text = text.replace(secret, fingerprint(secret))
    if not _triggered(text):
        return text
    for pattern, group in PATTERNS:
        text = pattern.sub(lambda m, g=group: _replace_group(m, g), text)
    return text


def redact_tree(value: Any) -> Any:
    """:func:`redact` of a JSON-like value, with one check first: its JSON text (json's C encoder) holding no
    word any pattern needs and no known secret, nothing in it can be redacted, and it is returned as it is.
    Most evidence passes that check, so a hundred thousand results are not walked string by string."""
    if type(value) in (dict, list) and value:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            return redact(value)
        if not _triggered(text) and not any(secret in text for secret in _known_in_json):
            return value
    return redact(value)


def redact_once(text: str) -> str:
    """:func:`redact_text` of a text seen once (a test's node id): not remembered."""
    return _redact_text(text) if isinstance(text, str) else redact(text)


def _replace_group(match: re.Match, group: int) -> str:
    secret = match.group(group)
    if "[sha256:" in secret or "…" in secret:
        return match.group(0)
    start, end = match.start(group) - match.start(0), match.end(group) - match.start(0)
    whole = match.group(0)
    return whole[:start] + fingerprint(secret) + whole[end:]


def redact(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dict keys included)."""
    kind = type(value)
    if kind is str:
        return redact_text(value)
    if kind is dict:
        return {redact(k): redact(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [redact(v) for v in value]
    if kind in _PLAIN:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


_PLAIN = (int, float, bool, type(None))
