"""Secrets suite (family secrets): literal secrets, ConfigMaps, connection strings, pull secrets,
rotation age. Any secret found is reported redacted (first/last characters and a hash)."""

from __future__ import annotations

import pytest

from nimwarden.judges import k8s_secrets as judge
from nimwarden.outcome import Outcome
from nimwarden.probes import k8s


def _workloads(target, deployment, verdict):
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        verdict(w)
        return None
    return w


@pytest.mark.control("SECRETS-LITERAL-001")
def test_no_literal_secrets(target, deployment, verdict):
    w = _workloads(target, deployment, verdict)
    if w:
        verdict(judge.literal_secrets(w.templates), subject=w.subject)


@pytest.mark.control("SECRETS-CONFIGMAP-001")
def test_no_secrets_in_configmaps(target, deployment, verdict):
    w = _workloads(target, deployment, verdict)
    if w:
        verdict(judge.configmap_secrets(w.state, w.templates), subject=w.subject)


@pytest.mark.control("SECRETS-CONNSTR-001")
def test_no_credentials_in_connection_strings(target, deployment, verdict):
    w = _workloads(target, deployment, verdict)
    if w:
        verdict(judge.connection_strings(w.templates), subject=w.subject)


@pytest.mark.control("SECRETS-PULL-001")
def test_image_pull_secrets(target, deployment, verdict):
    w = _workloads(target, deployment, verdict)
    if w:
        registries = k8s.option(target, "private_registries", judge.DEFAULT_PRIVATE_REGISTRIES)
        verdict(judge.pull_secrets(w.state, w.templates, registries), subject=w.subject)


@pytest.mark.control("SECRETS-ROTATION-001")
def test_secret_rotation_age(target, deployment, verdict):
    w = _workloads(target, deployment, verdict)
    if w:
        verdict(judge.secret_age(w.state, w.templates, float(k8s.option(target, "secret_max_age_days", 90))), subject=w.subject)
