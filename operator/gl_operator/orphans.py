"""Registry objects left behind in a namespace that no longer exists.

A namespace deletion that misses a kind (its controller's discovery did not list our CRDs, as
just after an API server restart) removes the namespace and leaves those objects in etcd. They
can still be read, but every write to them is refused with the namespace's 404, so reconciling
them can never succeed: retrying would log an error every pass and keep a kopf worker busy for
ever. The operator says so once per object and leaves them alone.

Nor can they be deleted while the namespace is missing: the admission policies that match them
read the namespace and answer 404. Creating the namespace again and deleting it lets the namespace
controller finish the job (docs/lifecycle.md, "Objects left behind by a namespace deletion").
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from kubernetes.client.rest import ApiException

from gl_kube import objects

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
_reported: set[tuple[str, str | None, str]] = set()
_reported_lock = threading.Lock()


def report(kind: str, namespace: str | None, name: str) -> None:
    """Warn once per object and process: the admin's fix, not a traceback per pass."""
    with _reported_lock:
        if (kind, namespace, name) in _reported:
            return
        _reported.add((kind, namespace, name))
    log.warning("%s %s/%s was left behind in namespace %s, which no longer exists (its deletion did not "
                "finish); it is not reconciled. To finish the deletion, create the namespace again and delete it "
                "(`kubectl create namespace %s && kubectl delete namespace %s`); to keep the object, create the "
                "namespace again and restart the operator.", kind, namespace, name, namespace,
                namespace, namespace)


@contextmanager
def tolerated(kind: str, namespace: str | None, name: str) -> Iterator[None]:
    """Run a reconcile of one object; a refusal because its namespace is gone ends it quietly
    (never the case of a cluster-scoped object, whose namespace is None)."""
    try:
        yield
    except ApiException as error:
        if not objects.namespace_gone(error):
            raise
        report(kind, namespace, name)


def in_namespace(kind: str) -> Callable[[F], F]:
    """A kopf handler of ``kind`` that ends, rather than retries, for an object left behind."""
    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            with tolerated(kind, kwargs["namespace"], kwargs["name"]):
                return handler(*args, **kwargs)
            return None
        return run  # type: ignore[return-value]
    return decorate
