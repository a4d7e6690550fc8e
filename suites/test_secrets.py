"""Secrets (family secrets): literal secrets, ConfigMaps, connection strings, pull secrets, rotation
age. Any secret found is reported redacted (first/last characters and a hash)."""

from __future__ import annotations

import pytest

from nimwarden.families.secrets import judge
from nimwarden.k8s import source as k8s


@pytest.mark.control("SECRETS-LITERAL-001")
def test_no_literal_secrets(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.literal_secrets))


@pytest.mark.control("SECRETS-CONFIGMAP-001")
def test_no_secrets_in_configmaps(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.configmap_secrets, state=True))


@pytest.mark.control("SECRETS-CONNSTR-001")
def test_no_credentials_in_connection_strings(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.connection_strings))


@pytest.mark.control("SECRETS-PULL-001")
def test_image_pull_secrets(target, deployment, verdict):
    registries = k8s.option(target, "private_registries", judge.DEFAULT_PRIVATE_REGISTRIES)
    verdict(k8s.judge_workloads(target, deployment, judge.pull_secrets, registries, state=True))


@pytest.mark.control("SECRETS-ROTATION-001")
def test_secret_rotation_age(target, deployment, verdict):
    max_age = float(k8s.option(target, "secret_max_age_days", 90))
    verdict(k8s.judge_workloads(target, deployment, judge.secret_age, max_age, state=True))
