"""Independent TLS scanners used to cross-check sslyze in tests and benchmarks (not part of the
harness): nmap's ssl-enum-ciphers and testssl.sh, both through the scope guard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nimwarden.families.tls.probe import PROTOCOLS, TlsProbeError


def nmap_protocols(host: str, port: int, *, guard: Callable[[str], None], timeout_s: float = 30.0) -> dict[str, bool]:
    """Protocol versions as nmap's ssl-enum-ciphers sees them: an independent implementation
    (Lua, its own ClientHellos) used to cross-check sslyze."""
    from nimwarden.net.scope import scoped_addresses

    (addr,) = scoped_addresses([host], guard)
    import nmap

    nm = nmap.PortScanner()
    res = nm.scan(hosts=addr, ports=str(int(port)), sudo=False,
                  arguments=f"-n -Pn -sT --script ssl-enum-ciphers --host-timeout {int(timeout_s)}s --max-retries 1")
    try:
        text = res["scan"][addr]["tcp"][int(port)]["script"]["ssl-enum-ciphers"]
    except KeyError:
        raise TlsProbeError(f"ssl-enum-ciphers returned nothing for {addr}:{port}") from None
    seen = {line.strip().rstrip(":").strip() for line in text.splitlines() if line.startswith("  ") and not line.startswith("   ")}
    return {p: p in seen for p in PROTOCOLS if p != "SSLv2"}


_TESTSSL_IDS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1", "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}


def testssl_protocols(host: str, port: int, *, guard: Callable[[str], None], timeout_s: float = 120.0,
                      binary: str = "testssl") -> dict[str, bool]:
    """Protocol versions as testssl.sh (Debian package testssl.sh) sees them: a second
    independent cross-check (bash + its own sockets). Slow: tens of seconds per endpoint."""
    import json
    import shutil
    import subprocess
    import tempfile

    from nimwarden.net.scope import scoped_addresses

    (addr,) = scoped_addresses([host], guard)
    exe = shutil.which(binary) or shutil.which("testssl.sh")
    if exe is None:
        raise TlsProbeError("testssl.sh is not installed (Debian package testssl.sh)")
    with tempfile.TemporaryDirectory(prefix="nimwarden-testssl-") as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([exe, "--protocols", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                        "--jsonfile", str(out), f"{addr}:{int(port)}"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s, check=False)
        try:
            rows = json.loads(out.read_text())
        except (OSError, ValueError) as exc:
            raise TlsProbeError(f"testssl.sh wrote no readable result: {exc}") from None
    return parse_testssl(rows)


def parse_testssl(rows: list[dict]) -> dict[str, bool]:
    """testssl.sh's JSON rows (``--jsonfile``) to protocol -> offered; every version must be reported."""
    found = {_TESTSSL_IDS[r["id"]]: not str(r.get("finding", "")).startswith("not offered")
             for r in rows if isinstance(r, dict) and r.get("id") in _TESTSSL_IDS}
    if set(found) != set(PROTOCOLS):
        raise TlsProbeError(f"testssl.sh reported only {sorted(found)}")
    return found
