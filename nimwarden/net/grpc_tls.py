"""gRPC channel credentials for ``grpcs://`` endpoints (shared by the probes that speak gRPC over TLS)."""

from __future__ import annotations

from pathlib import Path


def grpc_channel_credentials(ca_file: str | Path | None, client_cert: str | Path | None = None,
                             client_key: str | Path | None = None):
    """gRPC channel credentials for a ``grpcs://`` endpoint from the profile's ``options.tls``
    (the CA to trust and, for mutual TLS, the client certificate and key)."""
    import grpc

    def read(p):
        return Path(p).read_bytes() if p else None

    return grpc.ssl_channel_credentials(root_certificates=read(ca_file), private_key=read(client_key),
                                        certificate_chain=read(client_cert))
