"""Host / in-container (family host): the running tritonserver process, inspected with testinfra
(local:// in the lab, kubectl:// in a cluster via options.host.testinfra)."""

from __future__ import annotations

import pytest

from nimwarden.families.host import judge, probe

pytestmark = pytest.mark.kinds("triton")


@pytest.mark.control("HOST-USER-001")
def test_server_user(deployment, verdict):
    verdict(judge.process_user(probe.process_attempt(deployment)), subject=probe.server_subject(deployment))


@pytest.mark.control("HOST-CODEDIRS-001")
def test_code_directories_not_writable(deployment, verdict):
    dirs = probe.directories_attempts(deployment, ("backend-directory", "repoagent-directory", "cache-directory"))
    verdict(judge.not_writable(dirs, "backend/repoagent/cache directories"), subject=probe.server_subject(deployment))


@pytest.mark.control("HOST-MODELRO-001")
def test_model_repository_read_only(deployment, verdict):
    dirs = probe.directories_attempts(deployment, ("model-repository",))
    verdict(judge.not_writable(dirs, "model repository"), subject=probe.server_subject(deployment))


@pytest.mark.control("HOST-ENVSECRET-001")
def test_no_secret_in_environment(deployment, verdict):
    verdict(judge.environment_secrets(probe.environment_attempt(deployment)), subject=probe.server_subject(deployment))
