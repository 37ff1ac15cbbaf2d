"""The CLI's own Kubernetes client: the few REST calls `gl` makes, kubeconfig read as kubectl reads it.

Importing the official client (its generated models and configuration) takes longer than a whole
`kubectl get`, so the CLI speaks JSON over HTTPS with the standard library instead. It reads
certificates, tokens, token files and exec credential plugins from the kubeconfig; the calls are the
registry's kinds (get, list in pages, create, JSON patch), SelfSubjectReview and raw GETs/POSTs.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gl_api import GROUP, VERSION

if TYPE_CHECKING:  # http.client, ssl and yaml are imported when a command connects, not for `gl --help`
    import http.client
    import ssl
    from collections.abc import Iterator
    from email.message import Message

PAGE = 500  # list in pages, as gl_kube.objects does


class Kind(Protocol):
    plural: str
    namespaced: bool


@dataclass(frozen=True)
class Resource:
    """Where one of the registry's kinds is served: all a call needs, without the kind's models.

    ``gl_api.kinds`` carries the pydantic models, which take longer to build than a `kubectl get`
    takes in all; the read commands use these, the writes build their bodies with ``gl_api.kinds``.
    tests/unit/test_cli_startup.py keeps the two in step.
    """
    plural: str
    namespaced: bool = True


AGENT = Resource("agents")
AGENT_VERSION = Resource("agentversions")
PROMOTION = Resource("promotions")
AGENT_DEPLOYMENT = Resource("agentdeployments")
TENANT_POLICY = Resource("tenantpolicies", namespaced=False)


class NoCluster(Exception):
    """No usable kubeconfig; the message says what to pass."""


class Unreachable(Exception):
    """The API server did not answer (down, wrong address, TLS refused)."""


class ApiError(Exception):
    """The API server refused a request: its HTTP status, reason and body (a Status object)."""

    def __init__(self, status: int, reason: str, body: str, headers: Message):
        super().__init__(f"({status}) {reason}: {body}")
        self.status, self.reason, self.body, self.headers = status, reason, body, headers


def explain(error: ApiError) -> str:
    """The API server's own message for a failed request, as kubectl would print it."""
    try:
        message = json.loads(error.body or "{}").get("message") or error.reason
    except ValueError:
        message = error.body or error.reason
    return f"not found: {message}" if error.status == 404 else str(message)


@dataclass
class Response:
    status: int
    headers: Message
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Api:
    """One API server, reached with one user's credentials over a kept-alive connection."""

    server: str
    ssl_context: ssl.SSLContext | None
    headers: dict[str, str] = field(default_factory=dict)
    server_name: str | None = None  # the kubeconfig's tls-server-name: the name the certificate must carry
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = self._new_connection()
        return self._conn

    def _new_connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        import http.client

        url = urllib.parse.urlsplit(self.server)
        if url.scheme == "https":
            server_name = self.server_name or url.hostname

            class Https(http.client.HTTPSConnection):
                def connect(self) -> None:  # the certificate must name tls-server-name, when one is given
                    http.client.HTTPConnection.connect(self)
                    self.sock = self._context.wrap_socket(self.sock, server_hostname=server_name)  # type: ignore[attr-defined]

            return Https(url.hostname or "", url.port or 443, context=self.ssl_context, timeout=timeout)
        return http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=timeout)

    def stream(self, path: str, params: list[tuple[str, str]], timeout: float) -> Iterator[dict[str, Any]]:
        """A watch's events as they arrive, on a connection of its own, for at most ``timeout`` seconds."""
        import http.client

        prefix = urllib.parse.urlsplit(self.server).path.rstrip("/")
        seconds = max(1, int(timeout))
        target = prefix + path + "?" + urllib.parse.urlencode([*params, ("watch", "1"),
                                                               ("timeoutSeconds", str(seconds))])
        connection = self._new_connection(timeout=seconds + 5)
        try:
            connection.request("GET", target, headers={**self.headers, "Accept": "application/json",
                                                       "User-Agent": "gl"})
            answer = connection.getresponse()
            if answer.status >= 400:
                raise ApiError(answer.status, answer.reason, answer.read().decode(errors="replace"), answer.msg)
            while line := answer.readline():
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException) as error:
            raise Unreachable(f"watching on the API server {self.server} failed: {error}") from error
        finally:
            connection.close()

    def request(self, method: str, path: str, params: list[tuple[str, str]] | None = None, body: Any = None,
                content_type: str = "application/json") -> Response:
        """Send one request; a refusal (status >= 400) raises ``ApiError``."""
        import http.client

        prefix = urllib.parse.urlsplit(self.server).path.rstrip("/")
        target = prefix + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        headers = {**self.headers, "Accept": "application/json", "User-Agent": "gl"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a kept-alive connection the server closed is reopened once
            connection = self._connection()
            try:
                connection.request(method, target, body=payload, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                connection.close()
                self._conn = None
                if attempt == 2:
                    raise Unreachable(f"the API server {self.server} closed the connection: {error}") from error
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._conn = None
                raise Unreachable(f"cannot reach the API server {self.server}: {error}") from error
        if answer.status >= 400:
            raise ApiError(answer.status, answer.reason, data.decode(errors="replace"), answer.msg)
        return Response(answer.status, answer.msg, data)


@dataclass(frozen=True)
class Connection:
    api: Api
    namespace: str
    """The namespace to act in: the one asked for, else the kubeconfig context's, else ``default``."""


# --- kubeconfig --------------------------------------------------------------------------------------


def _files(kubeconfig: str | None) -> list[Path]:
    given = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return [Path(p).expanduser() for p in given.split(os.pathsep) if p]


def _merged(kubeconfig: str | None) -> dict[str, Any]:
    """Several kubeconfig files merge as kubectl merges them: the first name and current-context win."""
    import yaml

    merged: dict[str, Any] = {"clusters": {}, "contexts": {}, "users": {}, "current-context": None}
    found = False
    for path in _files(kubeconfig):
        try:
            # libyaml's parser where PyYAML has it: the pure-Python one is most of a read command's own time
            document = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as error:
            raise NoCluster(f"no usable kubeconfig ({path}: {error}); pass --kubeconfig or set KUBECONFIG") from error
        found = True
        for section, key in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
            for entry in document.get(section) or []:
                merged[section].setdefault(entry.get("name"), {**(entry.get(key) or {}), "_dir": path.parent})
        merged["current-context"] = merged["current-context"] or document.get("current-context")
    if not found:
        raise NoCluster(f"no usable kubeconfig (no file at {os.pathsep.join(map(str, _files(kubeconfig)))}); "
                        "pass --kubeconfig or set KUBECONFIG")
    return merged


def _data(entry: dict[str, Any], key: str) -> bytes | None:
    """``key-data`` (base64) or the file named by ``key`` (relative to its kubeconfig), as bytes."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (entry["_dir"] / Path(entry[key]).expanduser()).read_bytes()
    return None


def _exec_credential(spec: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Run an exec credential plugin (client.authentication.k8s.io) and return its status."""
    import subprocess

    command = spec["command"]
    if "/" in command and not os.path.isabs(command):
        command = str(directory / command)
    environment = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []},
                   "KUBERNETES_EXEC_INFO": json.dumps({"apiVersion": spec.get("apiVersion"),
                                                       "kind": "ExecCredential", "spec": {"interactive": False}})}
    try:
        ran = subprocess.run([command, *(spec.get("args") or [])], env=environment, capture_output=True, text=True,
                             check=True)
        return json.loads(ran.stdout)["status"]
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError) as error:
        raise NoCluster(f"the kubeconfig's exec credential plugin {spec['command']!r} failed: {error}") from error


def _load_pem_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # The ssl module loads client certificates from files only: a private directory, removed at once.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gl-") as private:
        cert_file, key_file = Path(private, "client.crt"), Path(private, "client.key")
        cert_file.write_bytes(cert)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        context.load_cert_chain(cert_file, key_file)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Connection:
    """A connection for a user's command: the kubeconfig (never in-cluster), with kubectl's namespace rules."""
    import ssl

    config = _merged(kubeconfig)
    name = context or config["current-context"]
    if context and context not in config["contexts"]:
        raise NoCluster(f"context {context!r} is not in the kubeconfig; see `kubectl config get-contexts`")
    if not name or name not in config["contexts"]:
        raise NoCluster(f"no usable kubeconfig (no current context {name!r}); pass --kubeconfig or --context, or "
                        "run `kubectl config use-context`")
    chosen = config["contexts"][name]
    cluster = config["clusters"].get(chosen.get("cluster"))
    if not cluster or not cluster.get("server"):
        raise NoCluster(f"no usable kubeconfig (context {name!r} names no cluster with a server); pass --kubeconfig "
                        "or set KUBECONFIG")
    user = config["users"].get(chosen.get("user")) or {}
    if user.get("auth-provider"):
        raise NoCluster(f"the kubeconfig user {chosen.get('user')!r} uses an auth-provider, which gl does not "
                        "support; use an exec credential plugin (users[].user.exec) instead")
    headers: dict[str, str] = {}
    tls = None
    try:
        if cluster["server"].startswith("https://"):
            # As kubectl: the kubeconfig's CA alone when it names one (loading the system's CA
            # bundle as well took 22 ms of every command), the system's otherwise.
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ca = _data(cluster, "certificate-authority")
            if cluster.get("insecure-skip-tls-verify"):
                tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
            elif ca:
                tls.load_verify_locations(cadata=ca.decode())
            else:
                tls.load_default_certs()
        credential = _exec_credential(user["exec"], user["_dir"]) if user.get("exec") else {}
        cert = _data(user, "client-certificate") or credential.get("clientCertificateData", "").encode() or None
        key = _data(user, "client-key") or credential.get("clientKeyData", "").encode() or None
        if tls and cert and key:
            _load_pem_pair(tls, cert, key)
        token = user.get("token") or credential.get("token")
        if not token and user.get("tokenFile"):
            token = (user["_dir"] / user["tokenFile"]).read_text().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user.get("username"):
            basic = base64.b64encode(f"{user['username']}:{user.get('password', '')}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
    except (OSError, ssl.SSLError, ValueError) as error:
        raise NoCluster(f"no usable kubeconfig ({error}); pass --kubeconfig or set KUBECONFIG") from error
    api = Api(cluster["server"], tls, headers, cluster.get("tls-server-name"))
    return Connection(api=api, namespace=namespace or chosen.get("namespace") or "default")


# --- the registry's kinds ----------------------------------------------------------------------------


def _path(kind: Kind, namespace: str | None, name: str | None = None) -> str:
    where = f"/namespaces/{namespace}" if kind.namespaced and namespace else ""
    return f"/apis/{GROUP}/{VERSION}{where}/{kind.plural}" + (f"/{name}" if name else "")


def get(api: Api, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        return api.request("GET", _path(kind, namespace, name)).json()
    except ApiError as error:
        if error.status == 404:
            return None
        raise


def list_objects(api: Api, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
                 field_selector: str | None = None) -> list[dict[str, Any]]:
    """Every object of ``kind`` (in ``namespace``, or everywhere) matching the selectors, ``PAGE`` at a time."""
    params = [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = api.request("GET", _path(kind, namespace),
                           [*params, ("limit", str(PAGE)), *([("continue", token)] if token else [])]).json()
        items.extend(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return items


def watch_object(api: Api, kind: Kind, namespace: str, name: str, timeout: float) -> Iterator[dict[str, Any]]:
    """The object as it is now, then each time it changes, until it is deleted or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        # A watch without a resourceVersion starts with the object's current state (ADDED).
        for event in api.stream(_path(kind, namespace), [("fieldSelector", f"metadata.name={name}")], left):
            if event.get("type") == "ERROR":
                break  # e.g. 410 Gone: watch again from the current state
            if event.get("type") == "DELETED":
                return
            yield event["object"]
            if time.monotonic() >= deadline:
                return


def create(api: Api, kind: Kind, namespace: str | None, body: dict[str, Any], *,
           dry_run: bool = False) -> dict[str, Any]:
    return create_with_headers(api, kind, namespace, body, dry_run=dry_run)[0]


def create_with_headers(api: Api, kind: Kind, namespace: str | None, body: dict[str, Any], *,
                        dry_run: bool = False) -> tuple[dict[str, Any], Message]:
    """Create, returning the headers too: admission warnings come back only as Warning headers."""
    answer = api.request("POST", _path(kind, namespace), [("dryRun", "All")] if dry_run else None, body)
    return answer.json(), answer.headers


def patch_json(api: Api, kind: Kind, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
    """A JSON patch (RFC 6902), e.g. appending to a list without replacing it."""
    api.request("PATCH", _path(kind, namespace, name), body=operations, content_type="application/json-patch+json")


def whoami(api: Api) -> dict[str, Any]:
    """The user the API server authenticates these credentials as (a SelfSubjectReview)."""
    review = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                         body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).json()
    info = review["status"]["userInfo"]
    return {"username": info.get("username"), "groups": info.get("groups") or []}


def config_map_data(api: Api, namespace: str, name: str) -> dict[str, str]:
    return api.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}").json().get("data") or {}
