"""Exposure of the deployment through Kubernetes objects: LoadBalancer/NodePort Services on
sensitive ports, Ingress/Route without TLS, routes that publish /."""

from __future__ import annotations

import pytest

from nimwarden.judges import k8s_exposure as judge
from nimwarden.outcome import Outcome
from nimwarden.probes import k8s


def _judge(target, deployment, verdict, fn):
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return verdict(w)
    verdict(fn(w.state, w.templates), subject=w.subject)


@pytest.mark.control("PORTS-K8SEXPOSE-001")
def test_services_not_published(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.services)


@pytest.mark.control("TLS-K8SROUTE-001")
def test_routes_terminate_tls(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.ingress_tls)


@pytest.mark.control("GATEWAY-K8SROOT-001")
def test_routes_do_not_publish_root(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.root_path)
