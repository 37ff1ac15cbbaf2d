"""Telling a missing namespace from a missing object in the API server's 404."""

from __future__ import annotations

import json

from kubernetes.client.rest import ApiException

from gl_kube.objects import namespace_gone


def refusal(status: int, details: dict | None, body: str | None = None) -> ApiException:
    error = ApiException(status=status, reason="Not Found")
    error.body = body if body is not None else json.dumps({"kind": "Status", "code": status, "details": details})
    return error


def test_the_namespaces_404_says_the_namespace_is_gone():
    assert namespace_gone(refusal(404, {"name": "team-a", "kind": "namespaces"}))


def test_the_objects_own_404_does_not():
    assert not namespace_gone(refusal(404, {"name": "gl-x-1.0.0", "group": "registry.greenlang.ai",
                                            "kind": "agentversions"}))


def test_other_refusals_and_unreadable_bodies_do_not():
    assert not namespace_gone(refusal(403, {"name": "team-a", "kind": "namespaces"}))
    assert not namespace_gone(refusal(404, None, body="<html>not json</html>"))
