"""Pinned versions of the control-plane tools the local cluster is built from.

One place, so the build cache key, the README and the binaries never disagree.
"""

from __future__ import annotations

KUBERNETES = "v1.36.3"
# The staging modules (k8s.io/api, k8s.io/apiserver, ...) are tagged v0.<minor>.<patch>.
KUBERNETES_STAGING = "v0." + KUBERNETES.removeprefix("v1.")
ETCD = "v3.6.16"
KWOK = "v0.8.0"
OPA = "v1.22.3"
HELM = "v3.22.0"
# v3.2.12 as served does not compile; v3.4+ need modules the proxy refuses or a newer Go.
ARGOCD = "v3.2.11"
# krew, to install the `kubectl gl` plugin from its manifest in tests as users do.
KREW = "v0.4.3"
# Prometheus 3.16 is tagged v0.316.0 in its Go module. Debian's 2.42 lacks Kubernetes discovery.
PROMETHEUS = "v0.316.0"
