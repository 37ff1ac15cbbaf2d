"""Requests named as the API server's metrics name them: what the operator's request counter records."""

import pytest

from gl_kube.client import request_kind

BASE = "https://127.0.0.1:6443"


@pytest.mark.parametrize("method, path, expected", [
    ("GET", "/apis/registry.greenlang.ai/v1alpha1/namespaces/team/agentversions?fieldSelector=spec.agent%3Dx",
     ("list", "agentversions")),
    ("GET", "/apis/registry.greenlang.ai/v1alpha1/namespaces/team/agentversions/cbam-2-3-1", ("get", "agentversions")),
    ("PATCH", "/apis/registry.greenlang.ai/v1alpha1/namespaces/team/agentversions/cbam-2-3-1/status",
     ("patch", "agentversions")),
    ("GET", "/apis/registry.greenlang.ai/v1alpha1/promotions", ("list", "promotions")),
    ("GET", "/apis/registry.greenlang.ai/v1alpha1/tenantpolicies/acme", ("get", "tenantpolicies")),
    ("GET", "/api/v1/namespaces", ("list", "namespaces")),
    ("GET", "/api/v1/namespaces/team", ("get", "namespaces")),
    ("PUT", "/api/v1/namespaces/team/finalize", ("update", "namespaces")),
    ("POST", "/api/v1/namespaces/team/events", ("create", "events")),
    ("GET", "/api/v1/namespaces/team/pods?watch=true", ("watch", "pods")),
    ("DELETE", "/apis/apps/v1/namespaces/team/deployments", ("deletecollection", "deployments")),
    ("DELETE", "/apis/apps/v1/namespaces/team/deployments/web", ("delete", "deployments")),
    ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", ("create", "subjectaccessreviews")),
])
def test_verb_and_resource(method, path, expected):
    assert request_kind(method, BASE + path) == expected
