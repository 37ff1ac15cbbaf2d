"""A real node beside the local control plane: kubelet, containerd and runc running real pods.

The kwok node stays for scale (thousands of simulated pods); this one runs agent containers
that serve real requests. Its pieces, all under ``<cluster workdir>/node``:

- a Linux bridge for the pod network (CNI ``bridge`` + ``host-local``, no masquerade: pods
  reach the host and each other, nothing else is routed for them) that also holds the node's
  own address (the kubelet refuses a loopback one; these kernels have no dummy links);
- Debian's containerd (CRI, runc, cgroupfs) with its root, state and socket in the node dir,
  the locally built images (``gl_devenv.images``) imported into it;
- the kubelet built from the Kubernetes module (``gl-dev build node``), with a client
  certificate for ``system:node:<name>``.

The node registers with a taint and a label (``registry.greenlang.ai/pool=agents``): only
workloads that ask for the agent pool land here, everything else keeps going to kwok.
Address and bridge are machine-wide, so one real node runs per machine at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import yaml

from gl_devenv import build, certs, images
from gl_devenv.cluster import ClusterError, LocalCluster, free_port

NODE_NAME = "gl-node-0"
# The node's address is the pod network's gateway on the bridge: the bridge plugin keeps an
# address it would have set itself, and pods reach host services (S3, ...) there.
NODE_IP = "10.224.0.1"
BRIDGE = "gl-cni0"
POD_CIDR = "10.224.0.0/24"
POOL_LABEL = "registry.greenlang.ai/pool"
POOL = "agents"
TAINT = {"key": POOL_LABEL, "value": POOL, "effect": "NoSchedule"}
COMPONENTS = ("containerd", "kubelet")
OWNER_FILE = Path("/run/greenlang-node.owner")


def placement() -> dict:
    """What a pod spec needs to run on the agent pool (the operator's ``deployments.placement``)."""
    return {"nodeSelector": {POOL_LABEL: POOL},
            "tolerations": [{"key": POOL_LABEL, "operator": "Equal", "value": POOL, "effect": "NoSchedule"}]}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class RealNode:
    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.dir = cluster.workdir / "node"
        self.socket = self.dir / "containerd.sock"
        self.processes = cluster.processes
        self.runtime_image: images.Image | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 180) -> None:
        if self.running():
            self._import(images.pause_image(), images.runtime_image())  # the sources may have changed
            return
        self._claim()
        self.stop()  # leftovers of a crashed run
        self._claim()
        build.ensure(["node"])
        pause, runtime = images.pause_image(), images.runtime_image()
        deadline = time.monotonic() + timeout
        try:
            self._network()
            self._start_containerd(pause)
            self._import(pause, runtime)
            self._start_kubelet()
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the kubelet, every container, containerd; remove the network the node made.

        The bridge, the address and the network namespaces are the machine's: they are removed
        only by the workdir that owns the node (or when no one does, after a crash).
        """
        self.processes.stop("kubelet")
        if self.processes.running("containerd"):
            self._kill_containers()
        self.processes.stop("containerd", grace=10)
        self._kill_shims()
        self._unmount_all()
        owner = OWNER_FILE.read_text().strip() if OWNER_FILE.exists() else None
        if owner not in (None, str(self.cluster.workdir)):
            return
        for netns in Path("/var/run/netns").glob("cni-*"):
            subprocess.run(["umount", str(netns)], capture_output=True)
            with contextlib.suppress(OSError):
                netns.unlink()
        _ip("link", "delete", BRIDGE, check=False)
        shutil.rmtree(self.dir / "cni" / "ipam", ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            OWNER_FILE.unlink()
        with contextlib.suppress(FileNotFoundError, OSError):
            if self.cluster.is_running():
                self.cluster.kubectl("delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false", check=False)

    def running(self) -> bool:
        return all(self.processes.running(name) for name in COMPONENTS)

    def status(self) -> dict[str, str]:
        return {name: (f"running (pid {self.processes.pid(name)})" if self.processes.running(name) else "stopped")
                for name in COMPONENTS}

    # ------------------------------------------------------------ pieces

    def _import(self, pause: images.Image, runtime: images.Image) -> None:
        present = set(self._ctr("images", "list", "--quiet").stdout.split())
        for image in (pause, runtime):
            if image.reference not in present:
                self._ctr("images", "import", str(image.archive))
            # The CRI resolves repo@digest only by an image of that name (a pull would have made one).
            if image.pinned not in present:
                self._ctr("images", "tag", image.reference, image.pinned)
        self.runtime_image = runtime

    def _claim(self) -> None:
        """One real node per machine: its address and bridge are global."""
        if OWNER_FILE.exists():
            owner = Path(OWNER_FILE.read_text().strip())
            if owner != self.cluster.workdir and (owner / "run" / "kubelet.pid").exists():
                pid = int((owner / "run" / "kubelet.pid").read_text() or 0)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, 0)
                    raise ClusterError(f"a real node already runs for {owner}; stop it first "
                                       f"(gl-dev --home {owner} down), or start this one with --no-node")
        OWNER_FILE.write_text(str(self.cluster.workdir))

    def _network(self) -> None:
        if _ip("link", "show", BRIDGE, check=False).returncode != 0:
            _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "replace", f"{NODE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        cni = self.dir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-greenlang.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "greenlang-pods",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                          "dataDir": str(cni / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ]}, indent=2))

    def _start_containerd(self, pause: images.Image) -> None:
        for sub in ("root", "state"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{self.dir / 'root'}"
state = "{self.dir / 'state'}"
# Plugins that would write outside the node directory, or that nothing here uses.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[{cri}]
  sandbox_image = "{pause.reference}"
  # No CAP_SYS_RESOURCE here: lowering oom_score_adj is refused and runc would fail.
  restrict_oom_score_adj = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{self.dir / 'cni' / 'net.d'}"
"""
        path = self.dir / "containerd.toml"
        path.write_text(config)
        containerd = shutil.which("containerd")
        if not containerd:
            raise ClusterError("containerd is not installed: apt-get install containerd runc containernetworking-plugins")
        self._spawn("containerd", [containerd, f"--config={path}"])
        deadline = time.monotonic() + 30
        while self._ctr("version", check=False).returncode != 0:
            self._alive("containerd")
            if time.monotonic() > deadline:
                raise ClusterError(f"containerd did not answer on {self.socket}; {self.processes.tail('containerd')}")
            time.sleep(0.2)

    def _start_kubelet(self) -> None:
        pki = certs.ensure_pki(self.cluster.pki_dir)
        identity = certs.ensure_leaf(self.cluster.pki_dir, f"kubelet-{NODE_NAME}", pki.ca, f"system:node:{NODE_NAME}",
                                     organizations=("system:nodes",))
        kubeconfig = self.cluster.component_kubeconfig("kubelet", identity)
        kubelet_port, healthz_port = free_port(), free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            # These machines run cgroup v1 (hybrid); 1.36 refuses it unless told.
            "failCgroupV1": False, "failSwapOn": False, "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": NODE_IP, "port": kubelet_port, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": healthz_port,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki.ca.cert)}},
            "authorization": {"mode": "Webhook"},
            "podLogsDir": str(self.dir / "pod-logs"),
            "registerWithTaints": [TAINT],
            "maxPods": 60,
            # A shared development disk: do not evict pods because other things filled it.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "resolvConf": "/etc/resolv.conf",
            "serializeImagePulls": False,
            "shutdownGracePeriod": "0s",
        }
        config_path = self.dir / "kubelet.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._spawn("kubelet", [
            str(build.binary("node", "kubelet")), f"--config={config_path}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.dir / 'kubelet'}", f"--cert-dir={self.dir / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
            f"--node-labels={POOL_LABEL}={POOL}", "--v=1",
        ])

    def _wait_ready(self, deadline: float) -> None:
        while True:
            for name in COMPONENTS:
                self._alive(name)
            ready = self.cluster.kubectl("get", "node", NODE_NAME, "-o",
                                         'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False)
            if ready.stdout.strip() == "True":
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"node {NODE_NAME} never became Ready; {self.processes.tail('kubelet')}")
            time.sleep(0.5)

    # ------------------------------------------------------------ helpers

    def _spawn(self, name: str, argv: list[str]) -> None:
        (self.cluster.run_dir / f"{name}.argv").write_text(json.dumps(argv))
        self.processes.spawn(name, argv, cwd=self.dir)

    def _alive(self, name: str) -> None:
        if not self.processes.running(name):
            raise ClusterError(f"{name} exited during start-up; {self.processes.tail(name)}")

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args],
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def _kill_containers(self) -> None:
        """Pods outlive the kubelet and containerd: stop their processes while containerd can still say which."""
        tasks = self._ctr("tasks", "list", "--quiet", check=False).stdout.split()
        for task in tasks:
            self._ctr("tasks", "kill", "--signal=SIGKILL", "--all", task, check=False)
        for task in tasks:
            self._ctr("tasks", "delete", "--force", task, check=False)

    def _unmount_all(self) -> None:
        """The kubelet and containerd leave mounts (volumes, shm, the kubelet's own bind) under the node dir."""
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        prefix = str(self.dir) + "/"
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            if subprocess.run(["umount", mount], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mount], capture_output=True)

    def _kill_shims(self) -> None:
        """containerd-shim processes started for this node (their -address names our socket)."""
        listing = subprocess.run(["pgrep", "-a", "-f", "containerd-shim"], capture_output=True, text=True).stdout
        for line in listing.splitlines():
            pid, _, command = line.partition(" ")
            if str(self.socket) in command:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


@contextlib.contextmanager
def running(cluster: LocalCluster, timeout: float = 180):  # type: ignore[no-untyped-def]
    node = RealNode(cluster)
    node.start(timeout)
    try:
        yield node
    finally:
        node.stop()
