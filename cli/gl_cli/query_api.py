"""GETs on the mirror's aggregated query API (search, audit, usage), through the API server.

The API server forwards them to the mirror with the user's own identity; when no mirror is
registered or running, the answer says so instead of a bare 404 or 503.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_kube.objects import explain

QUERY = "/apis/search.registry.greenlang.ai/v1alpha1"


class MirrorUnavailable(Exception):
    """The query API is not served: no mirror registered, or it does not answer."""


def query(api: client.ApiClient, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """GET ``path`` of the query API, e.g. ``agentsearches`` or ``auditevents``; empty parameters are left out.

    Other refusals (no permission, a bad parameter) stay ``ApiException`` for the caller to word.
    """
    query_params = [(k, str(v)) for k, v in params.items() if v not in (None, "")]
    try:
        response = api.call_api(f"{QUERY}/{path}", "GET", query_params=query_params,
                                header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
                                _preload_content=False)
    except ApiException as error:
        if error.status == 503 or (error.status == 404 and "the server could not find" in (error.body or "")):
            raise MirrorUnavailable("the registry's search and audit API is not available: is the mirror running? "
                                    f"({explain(error)})") from error
        raise
    raw = response[0] if isinstance(response, tuple) else response  # the client's shape varies by version
    return json.loads(raw.data)
