"""Probes of Triton's HTTP and gRPC APIs: non-destructive by construction.

Every call here is read-only or provably harmless (see docs/facts.md):
- the restriction check runs before the method check, so a *wrong method*
  (GET on a POST-only route) answers 403 when restricted and 405 when open;
- a *load of a random, nonexistent model name* answers 403 when restricted
  and "failed to load" when open, and changes nothing;
- GET /v2/logging and GET /v2/trace/setting (and their gRPC twins with no
  settings) only read.
A probe never names a real model in a repository call, never unloads,
never posts settings.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from nimwarden.errors import OutOfScope
from nimwarden.families.triton_api.model_config import (
    ANONYMOUS,
    MAX_MODELS,
    REFUSED,
    UNKNOWN,
    WITH_KEY,
    DocumentRead,
    ModelDocuments,
    access_of,
    backend_names,
    find_secrets,
    parameter_names,
    refused_grpc,
    refused_http,
)
from nimwarden.lazy import LazyModule
from nimwarden.net import hangs, http
from nimwarden.outcome import Attempt
from nimwarden.redact import register
from nimwarden.target import Deployment, Endpoint, Target

# imported on first use: a run that judges only manifests never loads gRPC, tritonclient or numpy
grpc = LazyModule("grpc")
pb = LazyModule("tritonclient.grpc.service_pb2")
pb_grpc = LazyModule("tritonclient.grpc.service_pb2_grpc")


def probe_model_name() -> str:
    """A model name that cannot exist in any repository, new for every probe."""
    return f"nimwarden-probe-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ApiAnswer:
    """What one API call answered, over either protocol."""

    protocol: str  # http | grpc
    call: str  # "GET /v2/logging" or "grpc LogSettings"
    status: str  # HTTP status code as text, or gRPC status code name
    body: str  # HTTP body or gRPC details/message excerpt

    def evidence(self) -> dict[str, Any]:
        return {"response_status": self.status, "response_body": self.body[:600]}


# HTTP calls per category: (method, path). {m} is replaced by a fresh nonexistent model name.
HTTP_CALLS: dict[str, tuple[tuple[str, str], ...]] = {
    "model-repository": (("GET", "/v2/repository/index"), ("POST", "/v2/repository/models/{m}/load")),
    "model-config": (("GET", "/v2/models/{m}/config"),),
    "shared-memory": (("GET", "/v2/systemsharedmemory/status"), ("GET", "/v2/cudasharedmemory/status")),
    "statistics": (("GET", "/v2/models/stats"),),
    "trace": (("GET", "/v2/trace/setting"),),
    "logging": (("GET", "/v2/logging"),),
}

# gRPC calls per category: (rpc name, request factory taking the probe model name).
GRPC_CALLS: dict[str, tuple[tuple[str, Any], ...]] = {
    "model-repository": (
        ("RepositoryIndex", lambda m: pb.RepositoryIndexRequest()),
        ("RepositoryModelLoad", lambda m: pb.RepositoryModelLoadRequest(model_name=m)),
    ),
    "model-config": (("ModelConfig", lambda m: pb.ModelConfigRequest(name=m)),),
    "shared-memory": (
        ("SystemSharedMemoryStatus", lambda m: pb.SystemSharedMemoryStatusRequest()),
        ("CudaSharedMemoryStatus", lambda m: pb.CudaSharedMemoryStatusRequest()),
    ),
    "statistics": (("ModelStatistics", lambda m: pb.ModelStatisticsRequest()),),
    "trace": (("TraceSetting", lambda m: pb.TraceSettingRequest()),),  # no settings: read only
    "logging": (("LogSettings", lambda m: pb.LogSettingsRequest()),),  # no settings: read only
}


FRONTEND_PATHS = {"sagemaker": "/ping", "vertex": "/v1/models"}


class TritonProbe:
    """Asks one deployment's Triton endpoints questions; returns Attempts, never raises."""

    def __init__(self, target: Target, deployment: Deployment):
        self.target = target
        self.deployment = deployment
        self.limits = http.limits_for(target.timeouts)
        self._channels: dict[str, grpc.Channel] = {}
        self._documents: dict[str, Attempt[ModelDocuments]] = {}

    # ------------------------------------------------------------------ plumbing
    def _http(self, method: str, path: str, *, endpoint: str = "http", headers=None, body=None) -> Attempt[http.HttpResponse]:
        ep = self.deployment.endpoint(endpoint)
        if ep is None:
            return Attempt(f"triton.{endpoint}", f"{method} {path}", None, f"deployment {self.deployment.name} declares no {endpoint} endpoint")
        secret_headers = tuple(c.header.lower() for c in self.deployment.credentials.values() if c.header)
        return http.request(
            method, ep.url + path, probe=f"triton.{endpoint}", limits=self.limits, guard=self.target.guard,
            headers=headers, body=body, redact_headers=secret_headers,
        )

    def _grpc(self, rpc: str, request: Any, *, metadata=None) -> Attempt[ApiAnswer]:
        a = self.grpc_call(rpc, request, metadata=metadata)
        if not a.completed:
            return a  # type: ignore[return-value]
        code, details, reply = a.observation
        answer = ApiAnswer("grpc", a.request, code, str(reply)[:600] if code == "OK" else details[:600])
        return Attempt(a.probe, a.request, answer, None, a.elapsed_s)

    def grpc_call(self, rpc: str, request: Any, *, metadata=None) -> Attempt[tuple[str, str, Any]]:
        """One gRPC call: ``(status code name, details, reply or None)``; never raises."""
        ep = self.deployment.endpoint("grpc")
        if ep is None:
            return Attempt("triton.grpc", f"grpc {rpc}", None, f"deployment {self.deployment.name} declares no grpc endpoint")
        asked = f"grpc {rpc} {ep.address}" + (" with credentials" if metadata else "")
        t0 = time.monotonic()
        if skipped := hangs.not_sent(ep.host, ep.port, self.limits.give_up_after):
            return Attempt("triton.grpc", asked, None, skipped, 0.0)
        try:
            self.target.guard(ep.host)
        except OutOfScope as exc:
            return Attempt("triton.grpc", asked, None, f"refused: {exc}", 0.0)
        stub = pb_grpc.GRPCInferenceServiceStub(self._channel(ep))
        try:
            reply = getattr(stub, rpc)(request, timeout=self.limits.deadline_s, metadata=metadata)
            answer = ("OK", "", reply)
        except grpc.RpcError as exc:
            code, details, took = exc.code(), exc.details() or "", time.monotonic() - t0
            # UNAVAILABLE is also how Triton answers a restricted call or a load in model-control-mode none.
            down = code == grpc.StatusCode.UNAVAILABLE and not any(w in details for w in ("restricted", "not allowed"))
            if down or code == grpc.StatusCode.DEADLINE_EXCEEDED:
                reason = f"gRPC endpoint unavailable: {details[:200]}" if down else f"no answer within the {self.limits.deadline_s:g}s deadline"
                # unavailable after the connect time: a port that accepts and never speaks HTTP/2 (a hang)
                hangs.record(ep.host, ep.port, self.limits.give_up_after, not down or took >= self.limits.connect_s, reason)
                return Attempt("triton.grpc", asked, None, reason, took)
            answer = (code.name, details, None)
        except Exception as exc:  # noqa: BLE001 - error, never a pass
            return Attempt("triton.grpc", asked, None, f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
        hangs.record(ep.host, ep.port, self.limits.give_up_after, False)
        return Attempt("triton.grpc", asked, answer, None, time.monotonic() - t0)

    def _channel(self, ep: Endpoint) -> grpc.Channel:
        if ep.address not in self._channels:
            opts = [("grpc.enable_retries", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024)]
            if ep.tls:
                from nimwarden.net.grpc_tls import grpc_channel_credentials
                t = dict(self.deployment.options.get("tls", {}) or {})
                creds = grpc_channel_credentials(t.get("ca_file"), t.get("client_cert"), t.get("client_key"))
                self._channels[ep.address] = grpc.secure_channel(ep.address, creds, options=opts)
            else:
                self._channels[ep.address] = grpc.insecure_channel(ep.address, options=opts)
        return self._channels[ep.address]

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()

    def credential_headers(self, name: str = "restricted_api") -> dict[str, str] | None:
        cred = self.deployment.credentials.get(name)
        if cred is None or not cred.header:
            return None
        value = cred.resolve()
        if value is None:
            return None
        register(value)
        return {cred.header: value}

    # ------------------------------------------------------------------ questions
    def category(self, category: str, protocol: str) -> list[Attempt[ApiAnswer]]:
        """Ask each call of a restricted-API category, without credentials."""
        model = probe_model_name()
        if protocol == "http":
            return [self._as_answer(self._http(m, p.format(m=model))) for m, p in HTTP_CALLS[category]]
        return [self._grpc(rpc, make(model)) for rpc, make in GRPC_CALLS[category]]

    def model_load(self, protocol: str) -> Attempt[ApiAnswer]:
        """Load of a nonexistent model name, without credentials: does the server try?"""
        model = probe_model_name()
        if protocol == "http":
            return self._as_answer(self._http("POST", f"/v2/repository/models/{model}/load"))
        return self._grpc("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name=model))

    def trace_setting(self, with_credentials: bool) -> Attempt[http.HttpResponse]:
        headers = self.credential_headers() if with_credentials else None
        if with_credentials and headers is None:
            cred = self.deployment.credentials.get("restricted_api")
            where = cred.describe() if cred else "no restricted_api credential in the profile"
            return Attempt("triton.http", "GET /v2/trace/setting with credentials", None, f"credential unavailable ({where})")
        return self._http("GET", "/v2/trace/setting", headers=headers)

    def trace_settings(self) -> Attempt[http.HttpResponse]:
        """``GET /v2/trace/setting``: without credentials first, and with the restricted-API
        credential when the anonymous call was refused (a read-only call either way)."""
        attempt = self.trace_setting(with_credentials=False)
        if attempt.completed and attempt.observation.status in (401, 403):
            attempt = self.trace_setting(with_credentials=True)
        return attempt

    def server_metadata(self) -> Attempt[http.HttpResponse]:
        attempt = self._http("GET", "/v2")
        if attempt.completed and attempt.observation.status in (401, 403):
            headers = self.credential_headers()
            if headers:
                return self._http("GET", "/v2", headers=headers)
        return attempt

    def health(self, protocol: str) -> list[Attempt]:
        if protocol == "http":
            return [self._http("GET", "/v2/health/live"), self._http("GET", "/v2/health/ready")]
        return [self._grpc("ServerLive", pb.ServerLiveRequest()), self._grpc("ServerReady", pb.ServerReadyRequest())]

    def inference_check(self, protocol: str) -> tuple[list[Attempt], Attempt | None]:
        """Health over ``protocol``, and one real inference on the first declared model (None when the
        profile declares no model; an incomplete attempt when its inputs cannot be synthesized)."""
        infer = None
        if self.deployment.models:
            from nimwarden.families.triton_api.inputs import synthetic_inputs

            model = self.deployment.models[0]
            spec = synthetic_inputs(self.model_metadata(model))
            infer = self.infer(model, spec.observation, protocol) if spec.completed else spec
        return self.health(protocol), infer

    def model_documents(self, protocol: str) -> Attempt[ModelDocuments]:
        """Every model's configuration and metadata over ``protocol``, anonymous first, with the
        restricted-API key when refused; secret-looking values registered for redaction at once.
        Read once per protocol and shared: TRITON-CONFIGSECRET judges the secrets, TRITON-CVE-001 the
        backends the configurations name (nimwarden/families/triton_api/model_config.py)."""
        if protocol not in self._documents:
            self._documents[protocol] = _read_documents(self, protocol)
        return self._documents[protocol]

    def frontend(self, frontend: str) -> Attempt[http.HttpResponse]:
        """A read-only request on a cloud frontend's own port: SageMaker ``/ping``, Vertex AI ``/v1/models``."""
        return self.endpoint_get(frontend, FRONTEND_PATHS[frontend])

    def model_metadata(self, model: str) -> Attempt[http.HttpResponse]:
        return self._http("GET", f"/v2/models/{model}")

    def infer(self, model: str, inputs: list[dict], protocol: str) -> Attempt:
        """One real inference with small synthetic inputs (from the model's metadata)."""
        if protocol == "http":
            body = json.dumps({"inputs": inputs}).encode()
            return self._http("POST", f"/v2/models/{model}/infer", headers={"Content-Type": "application/json"}, body=body)
        req = pb.ModelInferRequest(model_name=model)
        for spec in inputs:
            tensor = req.inputs.add()
            tensor.name, tensor.datatype = spec["name"], spec["datatype"]
            tensor.shape.extend(spec["shape"])
            contents = tensor.contents
            field = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents", "INT64": "int64_contents", "BOOL": "bool_contents"}.get(spec["datatype"])
            if field is None:
                return Attempt("triton.grpc", f"grpc ModelInfer {model}", None, f"cannot synthesize {spec['datatype']} input over gRPC")
            getattr(contents, field).extend(spec["data"])
        return self._grpc("ModelInfer", req)

    def sagemaker_invoke(self) -> Attempt[http.HttpResponse]:
        """``POST /models/<random nonexistent name>/invoke`` on the SageMaker port, without credentials: the
        multi-model route answers (it would try to load that name, finds nothing, changes nothing) or refuses."""
        return self._http("POST", f"/models/{probe_model_name()}/invoke", endpoint="sagemaker",
                          headers={"Content-Type": "application/json"}, body=b"{}")

    def exposure_observations(self) -> dict[str, Any]:
        """What the CVE judge needs to tell whether a CVE's component is in play and reachable, over every
        protocol the deployment declares (all read-only or nonexistent-name calls)."""
        protocols = [p for p in ("http", "grpc") if self.deployment.endpoint(p) is not None]
        anchor = self.health(protocols[0])[0] if protocols else None
        out: dict[str, Any] = {
            "health": {p: self.health(p) for p in protocols},
            "model-load": {p: self.model_load(p) for p in protocols},
            "categories": {c: {p: self.category(c, p) for p in protocols} for c in ("logging", "trace", "shared-memory", "model-config")},
            "frontends": {f: (self.frontend(f), anchor) for f in FRONTEND_PATHS if self.deployment.endpoint(f) is not None and anchor},
            "openai": self.endpoint_get("openai", "/v1/models") if self.deployment.endpoint("openai") is not None else None,
        }
        if protocols:
            out["model_documents"] = self.model_documents(protocols[0])  # the same read TRITON-CONFIGSECRET judges
        return out

    def endpoint_get(self, endpoint: str, path: str) -> Attempt[http.HttpResponse]:
        return self._http("GET", path, endpoint=endpoint)

    def tcp(self, endpoint: Endpoint) -> Attempt[str]:
        return http.tcp_connect(endpoint.host, endpoint.port, probe="triton.tcp", limits=self.limits, guard=self.target.guard)

    @staticmethod
    def _as_answer(attempt: Attempt[http.HttpResponse]) -> Attempt[ApiAnswer]:
        if not attempt.completed:
            return attempt  # type: ignore[return-value]
        r = attempt.observation
        return Attempt(attempt.probe, attempt.request, ApiAnswer("http", attempt.request, str(r.status), r.text()[:600]), None, attempt.elapsed_s)


# ----------------------------------------------------------------------------------- model documents


class _DocumentReader:
    """One protocol's read-only calls, anonymous first and with the key only when refused."""

    def __init__(self, probe: TritonProbe, protocol: str):
        self.probe, self.protocol = probe, protocol
        self.http_key = probe.credential_headers()
        self.grpc_key = tuple((f"triton-grpc-protocol-{k.lower()}", v) for k, v in self.http_key.items()) if self.http_key else None

    def call(self, what: str, model: str) -> Attempt[tuple[str, str, str, Any]]:
        """``(call, access, status, document)`` for ``what`` in config | metadata | index."""
        first = self._once(what, model, keyed=False)
        if not first.completed or first.observation[1] != REFUSED or (self.http_key is None):
            return first
        return self._once(what, model, keyed=True)

    def _once(self, what: str, model: str, keyed: bool) -> Attempt[tuple[str, str, str, Any]]:
        ok = WITH_KEY if keyed else ANONYMOUS
        if self.protocol == "http":
            method, path, body = {"config": ("GET", f"/v2/models/{model}/config", None), "metadata": ("GET", f"/v2/models/{model}", None),
                                  "index": ("POST", "/v2/repository/index", b"{}")}[what]
            headers = {**(self.http_key or {}), "Content-Type": "application/json"} if keyed else None
            a = self.probe._http(method, path, headers=headers, body=body)
            call = f"{method} {path}" + (" with the restricted-API key" if keyed else "")
            if not a.completed:
                return Attempt(a.probe, call, None, a.error, a.elapsed_s)
            r = a.observation
            if r.status == 200:
                try:
                    return Attempt(a.probe, call, (call, ok, "200", json.loads(r.body.decode("utf-8"))), None, a.elapsed_s)
                except ValueError:
                    return Attempt(a.probe, call, (call, UNKNOWN, "200 (not JSON)", None), None, a.elapsed_s)
            return Attempt(a.probe, call, (call, access_of(str(r.status), r.text(), refused_http(r.status)), str(r.status), None), None,
                           a.elapsed_s)
        rpc, request = {"config": ("ModelConfig", lambda: pb.ModelConfigRequest(name=model)),
                        "metadata": ("ModelMetadata", lambda: pb.ModelMetadataRequest(name=model)),
                        "index": ("RepositoryIndex", lambda: pb.RepositoryIndexRequest())}[what]
        a = self.probe.grpc_call(rpc, request(), metadata=self.grpc_key if keyed else None)
        call = f"grpc {rpc}" + (f" {model}" if what != "index" else "") + (" with the restricted-API key" if keyed else "")
        if not a.completed:
            return Attempt(a.probe, call, None, a.error, a.elapsed_s)
        code, details, reply = a.observation
        if code == "OK":
            from google.protobuf.json_format import MessageToDict

            document = MessageToDict(reply.config if what == "config" else reply, preserving_proto_field_name=True)
            return Attempt(a.probe, call, (call, ok, "OK", document), None, a.elapsed_s)
        return Attempt(a.probe, call, (call, access_of(code, details, refused_grpc(code, details)), f"{code}: {details[:160]}", None),
                       None, a.elapsed_s)


def _read_documents(probe: TritonProbe, protocol: str) -> Attempt[ModelDocuments]:
    """Every model's configuration and metadata over ``protocol``, as anyone who can reach it reads them."""
    t0 = time.monotonic()
    reader = _DocumentReader(probe, protocol)
    cred = probe.deployment.credentials.get("restricted_api")
    credential = cred.describe() if (cred is not None and reader.http_key) else None
    asked = f"model configuration and metadata over {protocol}"
    index = reader.call("index", "")
    if not index.completed:
        return Attempt(f"triton.{protocol}", asked, None, f"{index.request}: {index.error}", index.elapsed_s)
    declared = list(probe.deployment.models)
    listed_names: list[str] = []
    _, access, index_status, doc = index.observation
    index_note = f"{access} ({index_status})"
    if access in (ANONYMOUS, WITH_KEY):
        entries = doc if isinstance(doc, list) else (doc or {}).get("models", [])
        listed_names = sorted({str(e.get("name")) for e in entries if isinstance(e, dict) and e.get("name")})
        index_note = f"read ({access}): {len(listed_names)} model(s)"
    names = list(dict.fromkeys([*declared, *listed_names]))
    source = " and ".join(filter(None, ["the profile" if declared else "", f"the repository index ({access})" if listed_names else ""])) or "nowhere"
    reads: list[DocumentRead] = []
    for model in names[:MAX_MODELS]:
        for what in ("config", "metadata"):
            a = reader.call(what, model)
            if not a.completed:
                return Attempt(f"triton.{protocol}", asked, None, f"{a.request}: {a.error}", a.elapsed_s)
            call, got, status, document = a.observation
            findings = find_secrets(document) if document is not None else ()  # registered before anything is kept
            params = parameter_names(document) if what == "config" and document is not None else ()
            backend = backend_names(document) if what == "config" and document is not None else ()
            reads.append(DocumentRead(model, what, call, got, status, params, findings, backend))
    if len(names) > MAX_MODELS:
        source += f"; the first {MAX_MODELS} of {len(names)} read"
    return Attempt(f"triton.{protocol}", asked,
                   ModelDocuments(protocol, tuple(names[:MAX_MODELS]), source, index_note, credential, tuple(reads)), None,
                   time.monotonic() - t0)

