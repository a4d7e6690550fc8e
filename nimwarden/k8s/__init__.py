"""Kubernetes cluster state for nimwarden: one object model from manifests, snapshots or a live API server."""

from nimwarden.k8s import nemo_operator  # noqa: F401 - registers the NIM Operator's NeMo renderer with the model
from nimwarden.k8s.manifests import load_manifests
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.snapshot import load_snapshot, take_snapshot
from nimwarden.k8s.workloads import PodTemplate, pod_templates, select

__all__ = ["ClusterState", "K8sObject", "PodTemplate", "load_manifests", "load_snapshot", "pod_templates", "select", "take_snapshot"]
