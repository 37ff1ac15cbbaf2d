"""A real Argo CD beside the local cluster, outside it, on loopback: GitOps against the registry's kinds.

Only what syncs: the application controller and the repo server (``gl-dev build argocd``, built
from Argo CD's Go module), with Debian's ``redis-server`` as their cache. No API server or UI:
Applications are plain objects in the namespace ``argocd``, read and written with kubectl.
Running outside the cluster is what upstream's developer setup does: ``ARGOCD_FAKE_IN_CLUSTER``
maps ``https://kubernetes.default.svc`` to the kubeconfig's cluster. The registry's Lua health
checks (``helm/greenlang-registry/argocd/resource_customizations``) go into ``argocd-cm`` as a
user installs them, so Argo CD judges the five kinds by what the operator reports.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import yaml

from gl_devenv import build
from gl_devenv.cluster import LocalCluster, free_port
from gl_devenv.processes import StartError

REPO = Path(__file__).resolve().parents[2]
HEALTH_CHECKS = REPO / "helm" / "greenlang-registry" / "argocd" / "resource_customizations"
NAMESPACE = "argocd"
REDIS, REPO_SERVER, CONTROLLER = "argocd-redis", "argocd-repo-server", "argocd-application-controller"
# Who the controller acts as: one identity bound to cluster-admin, as upstream's install binds its
# ServiceAccount to a ClusterRole allowing everything (it applies whatever the repository holds).
IDENTITY = "argocd-application-controller"
# How often Argo CD looks for new commits (upstream's default is 3 minutes): a short poll stands in
# for the git webhook a real installation would get.
RECONCILIATION = "5s"


def health_customizations(root: Path = HEALTH_CHECKS) -> dict[str, str]:
    """``argocd-cm`` keys for every ``<group>/<Kind>/health.lua`` under ``root``, read now (not cached)."""
    scripts = sorted(root.glob("*/*/health.lua"))
    if not scripts:
        raise FileNotFoundError(f"no Argo CD health checks under {root} (<group>/<Kind>/health.lua)")
    return {f"resource.customizations.health.{p.parent.parent.name}_{p.parent.name}": p.read_text() for p in scripts}


def _manifests(directory: Path) -> list[dict]:
    return [doc for path in sorted(directory.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _config_objects() -> list[dict]:
    """Upstream's default configuration objects in ``argocd``, argocd-cm with our settings added."""
    objects = []
    for obj in _manifests(build.tool_dir("argocd") / "manifests" / "base" / "config"):
        obj["metadata"]["namespace"] = NAMESPACE
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "argocd-cm":
            obj["data"] = {**(obj.get("data") or {}), "timeout.reconciliation": RECONCILIATION,
                           **health_customizations()}
        objects.append(obj)
    return objects


def _kubectl(cluster: LocalCluster, what: str, *args: str, input: str | None = None) -> None:
    result = cluster.kubectl(*args, input=input, check=False)
    if result.returncode != 0:
        raise StartError(f"{what} failed: {result.stderr.strip()}")


def _wait_established(cluster: LocalCluster, crds: tuple[str, ...], timeout: float = 60) -> None:
    # Polled: `kubectl wait` fails outright on a CRD whose status has no conditions yet.
    query = '{.status.conditions[?(@.type=="Established")].status}'
    deadline = time.monotonic() + timeout
    while True:
        pending = [crd for crd in crds
                   if cluster.kubectl("get", "crd", crd, f"-o=jsonpath={query}", check=False).stdout != "True"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise StartError(f"Argo CD's CRDs {', '.join(pending)} were not established within {timeout:.0f}s")
        time.sleep(0.5)


def _install(cluster: LocalCluster) -> None:
    """Argo CD's CRDs, its namespace and configuration, the default AppProject and the controller's rights."""
    crds = build.tool_dir("argocd") / "manifests" / "crds"
    # Server-side: the ApplicationSet CRD is too large for the last-applied annotation of a client-side apply.
    _kubectl(cluster, "installing Argo CD's CRDs", "apply", "--server-side", "--force-conflicts",
             "--field-manager=gl-devenv", *[f"--filename={p}" for p in sorted(crds.glob("*-crd.yaml"))])
    _wait_established(cluster, ("applications.argoproj.io", "appprojects.argoproj.io"))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": IDENTITY, "labels": {"app.kubernetes.io/part-of": "argocd"}},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": IDENTITY}]}
    # argocd-server creates the default project when it starts; it does not run here.
    project = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
               "metadata": {"name": "default", "namespace": NAMESPACE},
               "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}
    items = [namespace, binding, *_config_objects(), project]
    _kubectl(cluster, f"creating namespace {NAMESPACE} with Argo CD's configuration", "apply", "--server-side",
             "--force-conflicts", "--field-manager=gl-devenv", "-f", "-",
             input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def _kubeconfig(cluster: LocalCluster, directory: Path) -> Path:
    """The controller's identity, its context's namespace ``argocd`` (where it looks for Applications)."""
    config = yaml.safe_load(cluster.user_kubeconfig(IDENTITY).read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = NAMESPACE
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _wait_listening(cluster: LocalCluster, name: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not cluster.processes.running(name):
            raise StartError(f"{name} exited during start-up; {cluster.processes.tail(name)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise StartError(f"{name} is not listening on 127.0.0.1:{port}; {cluster.processes.tail(name)}")


def start(cluster: LocalCluster, timeout: float = 120) -> None:
    """Install Argo CD's objects and start Redis, the repo server and the application controller (once)."""
    missing = [tool for tool in ("redis-server", "git") if shutil.which(tool) is None]
    if missing:
        raise StartError(f"{' and '.join(missing)} not found on PATH: Argo CD needs them "
                         f"(Debian: apt-get install {' '.join(missing)})")
    build.ensure(("argocd",))
    if all(cluster.processes.running(name) for name in (REDIS, REPO_SERVER, CONTROLLER)):
        return
    stop(cluster)
    try:
        _start(cluster, timeout)
    except BaseException:
        stop(cluster)
        raise


def _start(cluster: LocalCluster, timeout: float) -> None:
    _install(cluster)
    directory = cluster.workdir / "argocd"
    for sub in ("bin", "tls", "ssh", "gnupg", "tmp", "redis"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "gnupg").chmod(0o700)
    # The binary runs the command it is called as; called from here, its processes name their state directory.
    for command in (REPO_SERVER, CONTROLLER):
        (directory / "bin" / command).unlink(missing_ok=True)
        (directory / "bin" / command).symlink_to(build.binary("argocd"))
    redis, repo_server, repo_metrics, controller_metrics = (free_port() for _ in range(4))
    env = {**os.environ, "KUBECONFIG": str(_kubeconfig(cluster, directory)), "ARGOCD_FAKE_IN_CLUSTER": "true",
           "ARGOCD_TLS_DATA_PATH": str(directory / "tls"), "ARGOCD_SSH_DATA_PATH": str(directory / "ssh"),
           "ARGOCD_GNUPGHOME": str(directory / "gnupg"), "ARGOCD_GPG_ENABLED": "false",
           # In a cluster both read argocd-cm's timeout.reconciliation through these variables.
           "ARGOCD_RECONCILIATION_TIMEOUT": RECONCILIATION, "ARGOCD_RECONCILIATION_JITTER": "0s",
           # Clones of the repositories go under the state directory, not the machine's /tmp.
           "TMPDIR": str(directory / "tmp")}

    cluster.processes.spawn(REDIS, ["redis-server", "--bind", "127.0.0.1", "--port", str(redis), "--save", "",
                                    "--appendonly", "no", "--dir", str(directory / "redis")], cwd=directory)
    _wait_listening(cluster, REDIS, redis, timeout)
    cluster.processes.spawn(REPO_SERVER, [
        str(directory / "bin" / REPO_SERVER), "--disable-tls", "--address=127.0.0.1", f"--port={repo_server}",
        "--metrics-address=127.0.0.1", f"--metrics-port={repo_metrics}", f"--redis=127.0.0.1:{redis}",
        "--logformat=text"], cwd=directory, env=env)
    cluster.processes.wait_healthy(REPO_SERVER, f"http://127.0.0.1:{repo_metrics}/healthz", timeout)
    # Its metrics server listens on every interface (upstream hard-codes 0.0.0.0); nothing else does.
    cluster.processes.spawn(CONTROLLER, [
        str(directory / "bin" / CONTROLLER), f"--redis=127.0.0.1:{redis}", f"--repo-server=127.0.0.1:{repo_server}",
        "--repo-server-plaintext", f"--metrics-port={controller_metrics}",
        # Health of each resource in the Application's status, where kubectl (and a test) can read it.
        "--persist-resource-health", "--logformat=text"], cwd=directory, env=env)
    cluster.processes.wait_healthy(CONTROLLER, f"http://127.0.0.1:{controller_metrics}/healthz", timeout)


def stop(cluster: LocalCluster) -> None:
    for name in (CONTROLLER, REPO_SERVER, REDIS):
        cluster.processes.stop(name)
