"""The Postgres mirror as a real process, and a throwaway local Postgres, for e2e tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from gl_devenv import identities
from gl_devenv.external import ExternalCluster
from gl_devenv.postgres import LocalPostgres


@contextlib.contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    # The server runs as the postgres user, which must be able to reach the data directory.
    directory = Path(tempfile.mkdtemp(prefix="gl-e2e-pg-"))
    directory.chmod(0o755)
    server = LocalPostgres(directory / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")


class MirrorProcess:
    """A mirror of its own database. Unless told where (``--anchor-namespace``), it anchors its audit
    chain in a namespace of its own: mirrors of other databases on the same test cluster would
    otherwise take each other's anchor for a trail that lost rows."""

    def __init__(self, kubeconfig: Path, dsn: str, log: Path, args: list[str] | None = None):
        self.kubeconfig, self.dsn, self.log, self.args = kubeconfig, dsn, log, args or []
        self.process: subprocess.Popen[bytes] | None = None
        self.own_anchor_namespace: str | None = None
        self.query_api_cluster = None  # the cluster its query API is registered with, if it is

    def start(self) -> None:
        if self.own_anchor_namespace is None and not any(a.startswith("--anchor-namespace") for a in self.args):
            from kubernetes import client, config

            self.own_anchor_namespace = f"gl-anchor-{uuid.uuid4().hex[:8]}"
            core = client.CoreV1Api(config.new_client_from_config(config_file=str(self.kubeconfig)))
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.own_anchor_namespace)))
            identities.grant_in(ExternalCluster(self.kubeconfig), "mirror", self.own_anchor_namespace)
            self.args = [*self.args, f"--anchor-namespace={self.own_anchor_namespace}"]
        # As the chart runs it: its ServiceAccount, bound to crds/rbac_mirror.yaml, not the admin in ``kubeconfig``.
        identity = identities.kubeconfig(ExternalCluster(self.kubeconfig), "mirror")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gl_mirror", "run", f"--kubeconfig={identity}", f"--dsn={self.dsn}",
                 "--metrics-address=off", *self.args], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def stop(self) -> None:
        """Stop it, and take back what it registered: an APIService whose server is gone makes every
        namespace deletion in the cluster wait (the namespace controller cannot list its resources)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGUSR1)  # its threads' stacks, into the log
                time.sleep(1)
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the mirror did not stop within 20 s of SIGTERM; its threads are in {self.log}")
        if self.query_api_cluster is not None:
            from gl_devenv import registry_services

            registry_services.uninstall_query_api(self.query_api_cluster)
            self.query_api_cluster = None


def start_with_query_api(cluster, dsn: str, log: Path, args: tuple[str, ...] = ()) -> MirrorProcess:
    """Run the mirror with its aggregated query API, registered with the cluster's API server."""
    from gl_devenv import registry_services
    from gl_devenv.cluster import free_port

    port = free_port()
    _, serving = registry_services.query_api_tls(Path(cluster.pki_dir))
    mirror = MirrorProcess(Path(cluster.kubeconfig), dsn, log, [f"--api-address=127.0.0.1:{port}",
                                                              f"--api-cert={serving.cert}",
                                                              f"--api-key={serving.key}", *args])
    mirror.start()
    registry_services.install_query_api(cluster, Path(cluster.pki_dir), port)
    mirror.query_api_cluster = cluster
    return mirror


def count(dsn: str, query: str, *params: object) -> int:
    """The first column of ``query``'s row in the mirror's database; 0 before its tables exist."""
    try:
        with psycopg.connect(dsn) as conn:
            return conn.execute(query, params).fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0  # migrations not applied yet
