"""What the policies read of each kind, and nothing more: the shape caches keep and engines receive.

The webhook server caches every Agent, AgentVersion and TenantPolicy; keeping only these views
keeps 100,000 AgentVersions in tens of megabytes, and sends OPA small inputs. When a policy starts
reading another field, add it here: the parity tests run every case through these views and fail
when a view drops something a policy needs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from gl_api import labels

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trimmed(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the bookkeeping no policy reads (managed fields, kubectl's last-applied copy)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**obj, "metadata": meta}


def tenant(obj: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": obj["metadata"]["name"]}, "spec": obj.get("spec") or {}}


def namespace(obj: dict[str, Any]) -> dict[str, Any]:
    """An existing namespace as the tenancy policy sees it: whose it is, and whether it may be adopted."""
    meta = obj.get("metadata") or {}
    return {"exists": True, "tenant": (meta.get("labels") or {}).get(labels.TENANT),
            "adoptable": (meta.get("annotations") or {}).get(labels.ADOPTABLE) == "true"}


def agent(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"metadata": {"name": meta["name"], "namespace": meta.get("namespace")}, "spec": obj.get("spec") or {}}


def image_digest(image: str | None) -> str | None:
    """``sha256:…`` of an image pinned by digest, else None."""
    _, sep, digest = (image or "").partition("@")
    return digest if sep and digest.startswith("sha256:") else None


def _interned(text: str | None) -> str | None:
    return sys.intern(text) if text is not None else None


@dataclass(frozen=True, slots=True)
class Version:
    """An AgentVersion as the policies see it: identity, state, image, artifact digest, CPU request and
    deprecation."""

    namespace: str
    name: str
    agent: str
    version: str
    state: str | None
    image: str | None
    artifact_digest: str | None
    cpu: str | None
    sunset_at: str | None
    replacement: str | None

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Version:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        requests = (((spec.get("runtime") or {}).get("resources") or {}).get("requests") or {})
        deprecation = status.get("deprecation") or {}
        return cls(namespace=sys.intern(meta["namespace"]), name=meta["name"], agent=sys.intern(spec["agent"]),
                   version=spec["version"], state=_interned(status.get("state")), image=spec.get("image"),
                   artifact_digest=(spec.get("artifact") or {}).get("digest") or None,
                   cpu=_interned(str(requests["cpu"])) if requests.get("cpu") is not None else None,
                   sunset_at=deprecation.get("sunsetAt"), replacement=deprecation.get("replacement"))

    @property
    def ref(self) -> str:
        return f"{self.agent}@{self.version}"

    @property
    def digest(self) -> str | None:
        return image_digest(self.image)

    def as_input(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"agent": self.agent, "version": self.version}
        if self.image is not None:
            spec["image"] = self.image
        if self.artifact_digest is not None:
            spec["artifact"] = {"digest": self.artifact_digest}
        if self.cpu is not None:
            spec["runtime"] = {"resources": {"requests": {"cpu": self.cpu}}}
        status: dict[str, Any] = {}
        if self.state is not None:
            status["state"] = self.state
        if self.sunset_at is not None or self.replacement is not None:
            status["deprecation"] = {k: v for k, v in (("sunsetAt", self.sunset_at),
                                                       ("replacement", self.replacement)) if v is not None}
        return {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec, "status": status}
