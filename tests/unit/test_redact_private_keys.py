"""Private keys a target exposes are redacted whole, cut off or not, and the pattern that finds them stays linear
on text a target chose (a body of BEGIN lines with no END took 6.5 s for 155 kB: quadratic)."""

from __future__ import annotations

import time

import pytest

from nimwarden.redact import redact, redact_text

KEY_BODY = "MIIEowIBAAKCAQEAx4s9Y2Zp0ldk3jKz8pQfGm2u"


@pytest.mark.parametrize("text", [
    f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----",
    f"body: -----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}",  # evidence truncated before the END line
    f'{{"tls.key": "-----BEGIN PRIVATE KEY-----\\n{KEY_BODY}\\n', # inside JSON text, cut off
    f"-----BEGIN EC PRIVATE KEY-----\n{KEY_BODY}\n-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----",
])
def test_a_private_key_is_redacted_whole_ended_or_cut_off(text):
    out = redact_text(text)
    assert KEY_BODY[2:-2] not in out and "[sha256:" in out, out
    assert redact({"evidence": [text]}) == {"evidence": [out]}


def test_what_follows_an_ended_key_stays_readable():
    out = redact_text(f"before -----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY----- after, with words")
    assert out.startswith("before --…--[sha256:") and out.endswith(" after, with words"), out


@pytest.mark.parametrize("text", [
    "-----BEGIN A PRIVATE KEY-----x\n" * 50_000,  # 1.5 MB of BEGIN lines, none ended
    "-----BEGIN PRIVATE KEY-----" * 30_000,
    "-----BEGIN " + "A " * 200_000,
])
def test_redaction_is_linear_on_text_a_target_chose(text):
    started = time.process_time()
    redact_text(text)
    assert time.process_time() - started < 5  # 0.2 s here; quadratic, the first took hours
