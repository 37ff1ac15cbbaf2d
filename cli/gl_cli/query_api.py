"""GETs on the mirror's aggregated query API (search, audit, usage), through the API server.

The API server forwards them to the mirror with the user's own identity; when no mirror is
registered or running, the answer says so instead of a bare 404 or 503.
"""

from __future__ import annotations

from typing import Any

from gl_cli import kube

QUERY = "/apis/search.registry.greenlang.ai/v1alpha1"


class MirrorUnavailable(Exception):
    """The query API is not served: no mirror registered, or it does not answer."""


def query(api: kube.Api, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """GET ``path`` of the query API, e.g. ``agentsearches`` or ``auditevents``; empty parameters are left out.

    Other refusals (no permission, a bad parameter) stay ``kube.ApiError`` for the caller to word.
    """
    query_params = [(k, str(v)) for k, v in params.items() if v not in (None, "")]
    try:
        return api.request("GET", f"{QUERY}/{path}", query_params).json()
    except kube.ApiError as error:
        if error.status == 503 or (error.status == 404 and "the server could not find" in (error.body or "")):
            raise MirrorUnavailable("the registry's search and audit API is not available: is the mirror running? "
                                    f"({kube.explain(error)})") from error
        raise
