"""Network clients every family may use, all bounded and scope-guarded: the HTTP/TCP client
(``http``), reachability probes from network positions (``reach``, with its standard-library
``reach_agent``), scope helpers for tools that take addresses (``scope``), lenient TLS handshakes
(``tls_client``) and gRPC TLS credentials (``grpc_tls``)."""
