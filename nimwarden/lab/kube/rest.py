"""A small REST client for the lab's own calls to its API server (the kubelet, the applier).

The harness itself reads clusters through the ``kubernetes`` client (``nimwarden.k8s.live``); the
lab's parts talk plain REST with a client certificate: fewer layers between them and what the
API server says, and no client-side defaults that could hide a server's answer.
"""

from __future__ import annotations

import json
from typing import Any

API_TIMEOUT = (3.0, 10.0)


class Api:
    """``call(method, path, body)`` → (HTTP status, JSON body); status 0 when the server did not answer."""

    def __init__(self, config: dict):
        import requests

        self.base = config["server"]
        self.session = requests.Session()
        # Not the environment's CA bundle or proxies (REQUESTS_CA_BUNDLE would override a session's
        # verify): the lab CA, straight to loopback.
        self.session.trust_env = False
        self.cert, self.ca = (config["cert"], config["key"]), config["ca"]

    def call(self, method: str, path: str, body: Any = None, params: dict | None = None,
             content_type: str = "application/json") -> tuple[int, dict]:
        import requests

        data = json.dumps(body) if body is not None else None
        try:
            resp = self.session.request(method, self.base + path, data=data, params=params, timeout=API_TIMEOUT,
                                        cert=self.cert, verify=self.ca,
                                        headers={"Content-Type": content_type, "Accept": "application/json"})
        except requests.RequestException as exc:
            return 0, {"message": f"{type(exc).__name__}: {exc}"}
        try:
            body = resp.json()
        except ValueError:
            return resp.status_code, {"message": resp.text[:300]}
        return resp.status_code, body if isinstance(body, dict) else {"items": body}

    def close(self) -> None:
        self.session.close()
