"""The performance probe of one deployment: model facts and measurements as Attempts, cached per session.

Several controls judge the same measurement (stable? regressed?), so each
(model, load level) is measured once. Every address is checked against the
target's scope before the first packet; an out-of-scope endpoint, a refused
connection or a model the server cannot describe are incomplete attempts,
which the judges turn into errors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nimwarden.families.performance import baseline, inputs, loadgen, model_info
from nimwarden.families.performance.llm import StreamEndpoint, discover_model, measure_stream
from nimwarden.families.performance.settings import PerfSettings
from nimwarden.families.performance.transport import Endpoint
from nimwarden.outcome import Attempt, attempt


class PerfProbe:
    def __init__(self, target, deployment, settings: PerfSettings):
        self.target, self.deployment, self.settings = target, deployment, settings
        self._cache: dict[tuple, Attempt[Any]] = {}

    @classmethod
    def for_deployment(cls, target, deployment) -> PerfProbe:
        """The probe with the deployment's ``options.performance`` (the probe cache keeps one per deployment,
        so PERF-STABLE and PERF-REGRESSION share one measurement)."""
        from nimwarden.families.performance.settings import parse

        return cls(target, deployment, parse(deployment, target.path))

    def levels(self) -> list[tuple[str, Any]]:
        """Every (model, load level) the settings ask to measure."""
        return [(m, lvl) for m in self.settings.models for lvl in self.settings.levels]

    # -- where to send ----------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        name = self.settings.credential
        if not name:
            return {}
        cred = self.deployment.credentials[name]
        value = cred.resolve()
        if value is None or not cred.header:
            raise RuntimeError(f"credential {name!r} is not available ({cred.describe()})")
        return {cred.header: value}

    def endpoint(self) -> Endpoint | None:
        ep = self.deployment.endpoint(self.settings.protocol)
        if ep is None:
            return None
        self.target.guard(ep.host)
        tls = dict((self.deployment.options or {}).get("tls", {}) or {}) if ep.tls else {}
        opt = {k: str(tls[k]) for k in ("ca_file", "client_cert", "client_key") if tls.get(k)}
        return Endpoint(self.settings.protocol, ep.address, tls=ep.tls, headers=self._headers(),
                        timeout_s=max(self.target.timeouts.read_s, 5.0), **opt)

    def metrics_url(self) -> str | None:
        ep = self.deployment.endpoint("metrics")
        if ep is None:
            return None
        self.target.guard(ep.host)
        return ep.url.rstrip("/") + ("" if ep.url.rstrip("/").endswith("/metrics") else "/metrics")

    # -- what we ask ------------------------------------------------------------------
    def info(self, model: str) -> Attempt[model_info.ModelInfo]:
        key = ("info", model)
        if key not in self._cache:
            self._cache[key] = attempt("perf.model_info", f"metadata of {model} via {self.settings.protocol}",
                                       lambda: model_info.fetch(self._required_endpoint(), model))
        return self._cache[key]

    def payload(self, info: model_info.ModelInfo) -> inputs.Payload:
        specs = inputs.specs_from_metadata(info.metadata, self.settings.shapes.get(info.model),
                                           max_batch_size=info.max_batch_size)
        return inputs.build_payload(info.model, specs)

    def measurement(self, model: str, load: loadgen.LoadSpec) -> Attempt[loadgen.Measurement]:
        key = ("measure", model, load)
        if key not in self._cache:
            info = self.info(model)

            def run() -> loadgen.Measurement:
                if not info.completed:
                    raise RuntimeError(f"model metadata unavailable: {info.error}")
                return loadgen.measure(self._required_endpoint(), self.payload(info.observation), load,
                                       metrics_url=self._metrics_or_none(), engine=self.settings.engine)

            self._cache[key] = attempt("perf.loadgen", f"{load.mode} on {model} at {self._describe()}", run)
        return self._cache[key]

    def fingerprint(self, model: str, m: loadgen.Measurement) -> dict:
        info = self.info(model).observation
        gpus = m.server.gpus if m.server else None
        return baseline.fingerprint(server_version=info.server_version, model=model, model_versions=info.versions,
                                    protocol=self.settings.protocol, input_shapes=m.input_shapes, gpus=gpus)

    def stream(self, load: loadgen.LoadSpec) -> Attempt:
        key = ("stream", load)
        if key not in self._cache:
            def run():
                ep = self.deployment.endpoint("http")
                if ep is None:
                    raise RuntimeError("the deployment declares no http endpoint")
                self.target.guard(ep.host)
                llm = self.settings.llm
                model = llm.get("model") or (self.settings.models[0] if self.settings.models else "")
                sep = StreamEndpoint(ep.url.rstrip("/"), model, self._headers(),
                                     timeout_s=max(self.target.timeouts.read_s, 30.0),
                                     max_tokens=int(llm.get("max_tokens", 64)),
                                     **({"prompt": llm["prompt"]} if "prompt" in llm else {}))
                if not model:  # the profile names none: the one the NIM lists
                    sep = replace(sep, model=discover_model(sep, self.target.timeouts.connect_s, self.target.timeouts.read_s,
                                                            guard=self.target.guard))
                return measure_stream(sep, load)

            self._cache[key] = attempt("perf.llm", f"streaming chat completions, {load.mode}, at {self._describe('http')}", run)
        return self._cache[key]

    # -- helpers ----------------------------------------------------------------------
    def _required_endpoint(self) -> Endpoint:
        ep = self.endpoint()
        if ep is None:
            raise RuntimeError(f"deployment {self.deployment.name} declares no {self.settings.protocol} endpoint")
        return ep

    def _metrics_or_none(self) -> str | None:
        try:
            return self.metrics_url()
        except Exception:  # noqa: BLE001 - an out-of-scope metrics URL only removes server-side figures
            return None

    def _describe(self, name: str | None = None) -> str:
        ep = self.deployment.endpoint(name or self.settings.protocol)
        return ep.url if ep else f"(no {name or self.settings.protocol} endpoint)"
