"""What every `gl` command shares: options, the user's connection, the error boundary.

The CLI reads kubeconfig like kubectl, acts with the user's own credentials, never writes
status and never bypasses admission.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gl_cli import kube, query_api
from gl_cli.output import FORMATS, fail

if TYPE_CHECKING:  # `gl --help` imports no models: they are loaded by the commands that build objects
    from gl_api import kinds
    from gl_api.models import Model

Kubeconfig = Annotated[Optional[str], typer.Option("--kubeconfig", envvar="KUBECONFIG",
                                                   help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")]
Context = Annotated[Optional[str], typer.Option("--context", help="kubeconfig context (default: current)")]
Namespace = Annotated[Optional[str], typer.Option("-n", "--namespace", help="namespace (default: the context's)")]
Output = Annotated[str, typer.Option("-o", "--output", help="table, json or yaml")]
AllNamespaces = Annotated[bool, typer.Option("-A", "--all-namespaces", help="across all namespaces")]
Debug = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


def session(kubeconfig: str | None, context: str | None, namespace: str | None) -> kube.Connection:
    """The user's connection, as kubectl would make it; without a usable kubeconfig, exit 2."""
    try:
        return kube.connect(kubeconfig, context, namespace)
    except kube.NoCluster as error:
        fail(str(error), 2)


def mistakes() -> tuple[type[Exception], ...]:
    """Mistakes worded for the user: a bad reference or version, a refusal by the API server, an
    object its schema would refuse (caught before sending), an upload, the mirror, the kubeconfig,
    an API server that does not answer. Imported when an error happens, not at start-up."""
    from pydantic import ValidationError

    from gl_api import naming, semver
    from gl_cli import artifacts
    return (naming.InvalidReference, semver.InvalidVersion, kube.ApiError, ValidationError, artifacts.ArtifactError,
            query_api.MirrorUnavailable, kube.NoCluster, kube.Unreachable)


def one_line(error: Exception) -> str:
    from pydantic import ValidationError
    from pydantic.alias_generators import to_camel

    if isinstance(error, kube.ApiError):
        return kube.explain(error)  # the API server's own message, as kubectl prints it
    if isinstance(error, ValidationError):  # field names as they are written in YAML
        problems = "; ".join(f"{'.'.join(to_camel(p) if isinstance(p, str) else str(p) for p in e['loc'])}: "
                             f"{e['msg']}" for e in error.errors())
        return f"invalid {error.title}: {problems}"
    return str(error)


def guarded(function: Any) -> Any:
    """User mistakes become one clear line and a non-zero exit; tracebacks only with --debug."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            if kwargs.get("debug") or isinstance(error, typer.Exit):
                raise
            if isinstance(error, mistakes()):
                fail(one_line(error))
            fail(f"{type(error).__name__}: {error} (rerun with --debug for details)")
    return wrapper


def check_output(output: str) -> None:
    if output not in FORMATS:
        fail(f"unknown output format {output!r}; use one of {', '.join(FORMATS)}", 2)


def state_of(obj: dict[str, Any]) -> str:
    """An AgentVersion's lifecycle state as shown, empty until the operator has accepted it."""
    return (obj.get("status") or {}).get("state") or ""


def resource(kind: kinds.Kind, name: str, namespace: str, spec: Model, *, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An object of ``kind`` to create, its spec built (and so checked) through the kind's model."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata, "spec": spec.to_k8s()}
