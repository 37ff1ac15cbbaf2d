"""Lists read page by page, against the real API server and etcd, when etcd compacts mid-list.

The API server compacts etcd's history every five minutes; a list whose next page is asked for
after that has lost its continue token (410 Expired). The operator's resync pass reads every
AgentVersion page by page and checks each on its own: at 10,000 versions under load it outlived
a compaction and failed every time (`python -m bench memory 10k`).
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from e2e import registry as reg
from gl_api import GROUP, VERSION, kinds, naming
from gl_devenv.cluster import LocalCluster
from gl_kube import objects


def _create(api, namespace: str, versions: list[str]) -> None:
    for version in versions:
        obj = reg.example("AgentVersion")
        obj["metadata"] = {"name": naming.object_name(reg.AGENT, version), "namespace": namespace}
        obj["spec"]["version"] = version
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "agentversions", obj)


def _names(page: dict) -> list[str]:
    return [item["metadata"]["name"] for item in page["items"]]


def test_a_pass_carries_on_past_compaction_and_a_consistent_list_does_not(cluster, api, namespace, monkeypatch):
    assert isinstance(cluster, LocalCluster), "compacting etcd needs the local control plane"
    monkeypatch.setattr(objects, "PAGE", 2)  # a few objects make several pages
    versions = [f"1.0.{n}" for n in range(7)]
    _create(api, namespace, versions)
    consistent = objects.pages(api, kinds.AGENT_VERSION, namespace)
    tolerant = objects.pages(api, kinds.AGENT_VERSION, namespace, resume_expired=True)
    seen = _names(next(tolerant))
    next(consistent)
    _create(api, namespace, ["2.0.0"])  # history moves on; then etcd forgets where both lists began,
    cluster.compact_etcd()
    cluster.restart_apiserver()  # and so does the API server's watch cache, which can serve a page too

    for page in tolerant:
        seen += _names(page)
    assert {naming.object_name(reg.AGENT, v) for v in versions} <= set(seen)  # none skipped
    assert len(seen) == len(set(seen))  # none twice

    with pytest.raises(ApiException) as expired:
        list(consistent)
    assert expired.value.status == 410
