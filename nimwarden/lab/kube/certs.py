"""The control plane's certificates and kubeconfigs: a CA of its own (``nimwarden.lab.pki``), the certificate
each part presents, the service-account signing key, and a kubeconfig per client."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from nimwarden.lab import pki

NODE_NAME = "nimwarden-lab"


def make_pki(folder: Path) -> dict[str, dict[str, str] | str]:
    """A CA of the control plane's own and every certificate its parts present; the SA signing key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder.mkdir(parents=True, exist_ok=True)
    ca = pki.create_ca(folder, "nimwarden lab Kubernetes CA")
    served = ["127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
              "kubernetes.default.svc.cluster.local"]
    out: dict = {"ca": str(ca.cert), "ca_key": str(ca.key)}

    def leaf(name: str, hosts: list[str] | None = None, cn: str | None = None, groups: tuple[str, ...] = ()) -> dict[str, str]:
        return pki.issue(ca, folder, name, hosts, client=hosts is None, common_name=cn, groups=groups, elliptic=True).as_dict()

    out["apiserver"] = leaf("apiserver", served)
    out["admin"] = leaf("admin", cn="nimwarden-lab-admin", groups=("system:masters",))
    out["controller-manager"] = leaf("controller-manager", cn="system:kube-controller-manager")
    out["scheduler"] = leaf("scheduler", cn="system:kube-scheduler")
    out["apiserver-kubelet-client"] = leaf("apiserver-kubelet-client", cn="kube-apiserver-kubelet-client", groups=("system:masters",))
    out["node"] = leaf("node", cn=f"system:node:{NODE_NAME}", groups=("system:nodes",))
    out["kubelet"] = leaf("kubelet", ["127.0.0.1", NODE_NAME])
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_key, sa_pub = folder / "sa.key", folder / "sa.pub"
    fd = os.open(sa_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    sa_pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    out["sa"] = {"key": str(sa_key), "pub": str(sa_pub)}
    return out


def kubeconfig(path: Path, server: str, ca: str, cert: str, key: str, user: str, embed: bool = False) -> Path:
    """A kubeconfig for one client certificate (``embed``: the PEMs inside, so the file stands alone)."""
    if embed:
        import base64

        def data(p: str) -> str:
            return base64.b64encode(Path(p).read_bytes()).decode()

        cluster = {"server": server, "certificate-authority-data": data(ca)}
        creds = {"client-certificate-data": data(cert), "client-key-data": data(key)}
    else:
        cluster = {"server": server, "certificate-authority": ca}
        creds = {"client-certificate": cert, "client-key": key}
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "nimwarden-lab", "preferences": {},
           "clusters": [{"name": "nimwarden-lab", "cluster": cluster}],
           "users": [{"name": user, "user": creds}],
           "contexts": [{"name": "nimwarden-lab", "context": {"cluster": "nimwarden-lab", "user": user}}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml.safe_dump(doc, sort_keys=False))
    return path
