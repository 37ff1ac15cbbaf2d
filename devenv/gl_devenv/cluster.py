"""Start and stop a real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (which plays the kubelets of fake Nodes).

The same code serves ``gl-dev up`` and the pytest fixtures. Everything lives in one
state directory: certificates, etcd data, logs, pid files and an admin kubeconfig.
Processes run in their own sessions, so ``gl-dev down`` from another shell stops them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from gl_devenv import apiserver_audit, build, certs
from gl_devenv.processes import Supervisor

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_NAME = "kwok-node-0"
SERVICE_CIDR = "10.0.0.0/24"


class ClusterError(RuntimeError):
    """The control plane did not come up; the message points at the log to read."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def allocate(cls) -> Ports:
        return cls(*(free_port() for _ in range(6)))


class LocalCluster:
    """A control plane whose state lives in ``workdir``.

    ``audit_webhook``: the API server sends its audit log of the registry's groups to the mirror
    (``gl_devenv.apiserver_audit``), which may start later.
    """

    def __init__(self, workdir: Path, audit_webhook: bool = False):
        self.workdir = Path(workdir).resolve()
        self.audit_webhook = audit_webhook
        self.pki_dir = self.workdir / "pki"
        self.log_dir = self.workdir / "logs"
        self.run_dir = self.workdir / "run"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.state_file = self.run_dir / "state.json"
        self.processes = Supervisor(self.run_dir, self.log_dir)

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 180, attempts: int = 3) -> None:
        """Start every component (building them first if the cache lacks them) and wait until usable.

        Free ports are found by binding port 0 and closing it; another process can take one before
        our component binds it, so a start that lost such a race is retried on fresh ports.
        """
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except ClusterError as error:
                if "address already in use" not in str(error) or attempt == attempts - 1:
                    raise

    def _start(self, timeout: float) -> None:
        if self.is_running():
            return
        self.stop()  # clear leftovers of a crashed run
        build.ensure(build.CONTROL_PLANE)
        for directory in (self.log_dir, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        pki = certs.ensure_pki(self.pki_dir)
        ports = Ports.allocate()
        self.state_file.write_text(json.dumps({"ports": ports.__dict__}))
        deadline = time.monotonic() + timeout
        try:
            self._spawn("etcd", self._etcd_args(ports))
            self.processes.wait_healthy("etcd", f"http://127.0.0.1:{ports.etcd_client}/health",
                                        deadline - time.monotonic())
            self._spawn("kube-apiserver", self._apiserver_args(ports, pki))
            self._write_kubeconfig(self.kubeconfig, ports, pki.admin, pki)
            self._wait_https(ports.apiserver, "/readyz", pki, deadline, "kube-apiserver")
            component_kubeconfigs = {
                name: self._write_kubeconfig(self.run_dir / f"{name}.kubeconfig", ports, pair, pki)
                for name, pair in (("kube-controller-manager", pki.controller_manager),
                                   ("kube-scheduler", pki.scheduler), ("kwok", pki.kwok))
            }
            self._spawn("kube-controller-manager",
                        self._controller_manager_args(ports, pki, component_kubeconfigs["kube-controller-manager"]))
            self._spawn("kube-scheduler", [
                f"--kubeconfig={component_kubeconfigs['kube-scheduler']}",
                f"--authentication-kubeconfig={component_kubeconfigs['kube-scheduler']}",
                f"--authorization-kubeconfig={component_kubeconfigs['kube-scheduler']}",
                "--bind-address=127.0.0.1", f"--secure-port={ports.scheduler}", "--leader-elect=false",
            ])
            self._spawn("kwok", [
                f"--kubeconfig={component_kubeconfigs['kwok']}",
                # Only the fake node: a real node's kubelet (gl_devenv.node) must be left alone.
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--config={build.binary('kwok', 'stages.yaml')}",
                f"--server-address=127.0.0.1:{ports.kwok}", "--node-ip=127.0.0.1",
                # The fast stages heartbeat the node's status only every ten minutes and count on
                # its Lease; without one the node controller finds the node silent after 50 s,
                # marks it NotReady and every pod on it unready, and rollouts stall.
                "--node-lease-duration-seconds=40",
            ])
            self._ensure_node()
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop all components, newest first; data and certificates stay for the next start."""
        for name in reversed(COMPONENTS):
            self.processes.stop(name)

    def is_running(self) -> bool:
        return all(self.processes.running(name) for name in COMPONENTS)

    def status(self) -> dict[str, str]:
        result = {}
        for name in COMPONENTS:
            pid = self.processes.pid(name)
            result[name] = f"running (pid {pid})" if self.processes.running(name) else "stopped"
        return result

    @property
    def etcd_url(self) -> str:
        ports = json.loads(self.state_file.read_text())["ports"]
        return f"http://127.0.0.1:{ports['etcd_client']}"

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now (what the API server does every 5 minutes); returns the revision."""
        def post(path: str, body: dict) -> dict:
            request = urllib.request.Request(f"{self.etcd_url}{path}", data=json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                return json.loads(reply.read())

        revision = int(post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    @property
    def server(self) -> str:
        ports = json.loads(self.state_file.read_text())["ports"]
        return f"https://127.0.0.1:{ports['apiserver']}"

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(build.binary("kubernetes", "kubectl")), f"--kubeconfig={self.kubeconfig}", *args],
                              input=input, capture_output=True, text=True, check=check)

    # ------------------------------------------------------------ component flags

    def _etcd_args(self, ports: Ports) -> list[str]:
        client, peer = f"http://127.0.0.1:{ports.etcd_client}", f"http://127.0.0.1:{ports.etcd_peer}"
        return [
            "--name=greenlang", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=greenlang={peer}",
            # A throwaway local cluster: durability on power loss is not worth the fsync latency.
            "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
        ]

    def _apiserver_args(self, ports: Ports, pki: certs.ClusterPki) -> list[str]:
        return [
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki.apiserver.cert}", f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account.cert}",
            f"--service-account-signing-key-file={pki.service_account.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            # No kubelet holds the kubernetes Service's endpoints here; don't publish loopback ones.
            "--endpoint-reconciler-type=none",
            # The aggregation layer (used by the registry's query API) forwards identity in
            # these headers over mutual TLS with the front-proxy client certificate.
            f"--requestheader-client-ca-file={pki.front_proxy_ca.cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
            f"--proxy-client-key-file={pki.front_proxy_client.key}",
            # A real node (gl_devenv.node) registers its own address; logs and exec go there.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki.kubelet_client.cert}",
            f"--kubelet-client-key={pki.kubelet_client.key}",
            *self._audit_args(),
        ]

    def _audit_args(self) -> list[str]:
        if not self.audit_webhook:
            apiserver_audit.disable(self.run_dir)
            return []
        return apiserver_audit.apiserver_args(self.run_dir, self.pki_dir, free_port())

    def _controller_manager_args(self, ports: Ports, pki: certs.ClusterPki, kubeconfig: Path) -> list[str]:
        return [
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={ports.controller_manager}", "--leader-elect=false",
            "--controllers=*", f"--root-ca-file={pki.ca.cert}",
            f"--service-account-private-key-file={pki.service_account.key}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki.ca.cert}", f"--cluster-signing-key-file={pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ]

    # ------------------------------------------------------------ helpers

    def _spawn(self, name: str, args: list[str]) -> None:
        executable = build.binary("etcd" if name == "etcd" else "kwok" if name == "kwok" else "kubernetes", name)
        argv = [str(executable), *args]
        (self.run_dir / f"{name}.argv").write_text(json.dumps(argv))
        self.processes.spawn(name, argv, cwd=self.workdir)

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig that authenticates as ``user`` (client certificate signed by the cluster CA)."""
        pki = certs.ensure_pki(self.pki_dir)
        safe = "".join(c if c.isalnum() else "-" for c in user)
        pair = certs.ensure_leaf(self.pki_dir, f"user-{safe}", pki.ca, user, organizations=groups)
        ports = Ports(**json.loads(self.state_file.read_text())["ports"])
        return self._write_kubeconfig(self.workdir / f"kubeconfig-{safe}", ports, pair, pki)

    def restart_apiserver(self, timeout: float = 60) -> None:
        """Restart kube-apiserver with the same flags: its watch cache starts empty, as after an upgrade.

        Returns once writes of the registry's kinds pass admission again, when they are installed
        (/readyz comes seconds before the admission policies know the CRDs' schemas, and a write
        meanwhile fails with "Resource kind ... not found")."""
        from gl_devenv import crd_install

        served = self.kubectl("api-resources", "--api-group=registry.greenlang.ai", "-o", "name",
                              check=False).stdout.split()
        argv = json.loads((self.run_dir / "kube-apiserver.argv").read_text())
        self.processes.stop("kube-apiserver")
        self.processes.spawn("kube-apiserver", argv, cwd=self.workdir)
        port = json.loads(self.state_file.read_text())["ports"]["apiserver"]
        deadline = time.monotonic() + timeout
        self._wait_https(port, "/readyz", certs.ensure_pki(self.pki_dir), deadline, "kube-apiserver")
        if served:
            crd_install.wait_admissible(self, max(1.0, deadline - time.monotonic()))

    def _log_tail(self, name: str) -> str:
        return self.processes.tail(name)

    def _check_alive(self, name: str) -> None:
        if not self.processes.running(name):
            raise ClusterError(f"{name} exited during start-up; {self._log_tail(name)}")

    def _wait_https(self, port: int, path: str, pki: certs.ClusterPki, deadline: float, name: str) -> None:
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        url = f"https://127.0.0.1:{port}{path}"
        while True:
            self._check_alive(name)
            with contextlib.suppress(OSError, urllib.error.HTTPError):
                with urllib.request.urlopen(url, timeout=5, context=context) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} was not ready at {url}; {self._log_tail(name)}")
            time.sleep(0.25)

    def component_kubeconfig(self, name: str, user: certs.Pair) -> Path:
        """A kubeconfig in the run directory that authenticates with ``user``'s client certificate."""
        ports = Ports(**json.loads(self.state_file.read_text())["ports"])
        return self._write_kubeconfig(self.run_dir / f"{name}.kubeconfig", ports, user, certs.ensure_pki(self.pki_dir))

    def _write_kubeconfig(self, path: Path, ports: Ports, user: certs.Pair, pki: certs.ClusterPki) -> Path:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "greenlang-local", "cluster": {
                "server": f"https://127.0.0.1:{ports.apiserver}", "certificate-authority-data": b64(pki.ca.cert)}}],
            "users": [{"name": "greenlang-admin", "user": {
                "client-certificate-data": b64(user.cert), "client-key-data": b64(user.key)}}],
            "contexts": [{"name": "greenlang-local", "context": {
                "cluster": "greenlang-local", "user": "greenlang-admin", "namespace": "default"}}],
            "current-context": "greenlang-local",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def _ensure_node(self) -> None:
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE_NAME, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": NODE_NAME,
                                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(node))

    def _wait_ready(self, deadline: float) -> None:
        """Ready means a Pod can be scheduled and run: the node is Ready and `default` has its ServiceAccount."""
        while True:
            for name in COMPONENTS:
                self._check_alive(name)
            node = self.kubectl("get", "node", NODE_NAME, "-o",
                                'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False)
            account = self.kubectl("get", "serviceaccount", "default", "-n", "default", "-o", "name", check=False)
            if node.stdout.strip() == "True" and account.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"node {NODE_NAME} never became Ready; {self._log_tail('kwok')}")
            time.sleep(0.3)


@contextlib.contextmanager
def running(workdir: Path, timeout: float = 180) -> Iterator[LocalCluster]:
    cluster = LocalCluster(workdir)
    cluster.start(timeout=timeout)
    try:
        yield cluster
    finally:
        cluster.stop()
