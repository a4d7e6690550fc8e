"""What the load generator needs to know about a model before loading it.

Metadata (input names, datatypes, shapes) is required; the model config is
optional because a hardened server restricts it (only ``max_batch_size`` is
read from it); server metadata gives the Triton version for the baseline
fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from nimwarden.families.performance.transport import Endpoint


@dataclass(frozen=True)
class ModelInfo:
    model: str
    versions: tuple[str, ...]
    metadata: dict
    max_batch_size: int
    config_note: str  # where max_batch_size came from
    server_name: str
    server_version: str


def _client(endpoint: Endpoint):
    if endpoint.protocol == "grpc":
        import tritonclient.grpc as tc  # noqa: PLC0415

        return tc.InferenceServerClient(endpoint.address, ssl=endpoint.tls, root_certificates=endpoint.ca_file,
                                        private_key=endpoint.client_key, certificate_chain=endpoint.client_cert)
    import tritonclient.http as th  # noqa: PLC0415

    kwargs = {}
    if endpoint.tls:
        from nimwarden.families.performance.transport import tls_context  # noqa: PLC0415

        kwargs = {"ssl_context_factory": lambda: tls_context(endpoint), "insecure": False}
    return th.InferenceServerClient(endpoint.address, ssl=endpoint.tls, connection_timeout=endpoint.timeout_s,
                                    network_timeout=endpoint.timeout_s, **kwargs)


def fetch(endpoint: Endpoint, model: str, version: str = "") -> ModelInfo:
    """Ask the server about ``model``; raises with the server's reason when metadata is refused."""
    client = _client(endpoint)
    headers = dict(endpoint.headers) or None
    try:
        if endpoint.protocol == "grpc":
            kw = {"headers": headers, "as_json": True, "client_timeout": endpoint.timeout_s}
            server = client.get_server_metadata(**kw)
            meta = client.get_model_metadata(model, version, **kw)
            try:
                cfg = client.get_model_config(model, version, **kw).get("config", {})
                note = "model config"
            except Exception as exc:  # noqa: BLE001 - a restricted config is normal on a hardened server
                cfg, note = {}, f"model config not readable ({str(exc)[:120]}); assumed no batching"
        else:
            server = client.get_server_metadata(headers=headers)
            meta = client.get_model_metadata(model, version, headers=headers)
            try:
                cfg = client.get_model_config(model, version, headers=headers)
                note = "model config"
            except Exception as exc:  # noqa: BLE001 - see above
                cfg, note = {}, f"model config not readable ({str(exc)[:120]}); assumed no batching"
    finally:
        client.close()
    return ModelInfo(
        model=model, versions=tuple(str(v) for v in meta.get("versions", [])), metadata=meta,
        max_batch_size=int(cfg.get("max_batch_size", 0) or 0), config_note=note,
        server_name=str(server.get("name", "")), server_version=str(server.get("version", "")),
    )
