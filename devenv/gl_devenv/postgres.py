"""A real PostgreSQL server (Debian's package) initialised in a project folder, on a loopback port.

The server refuses to run as root, so as root the data directory belongs to the `postgres`
system user and the server runs as that user. Used by `gl-dev up` and the test fixtures; in
production the mirror takes any Postgres by DSN.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gl_devenv.cluster import free_port

DATABASE = "greenlang"
SUPERUSER = "postgres"


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path:
    """Debian installs the server under /usr/lib/postgresql/<major>/bin; take the newest."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresError("PostgreSQL is not installed: apt-get install postgresql postgresql-contrib")
    return Path(found[-1]).parent


def reachable_by_server(path: Path) -> bool:
    """Can the postgres system user reach ``path`` (every parent must be searchable)?"""
    if os.geteuid() != 0:
        return True
    return subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-x", str(path)], capture_output=True).returncode == 0


def project_directory(home: Path) -> Path:
    """Where a project's Postgres lives: inside it when the server can reach it, else under /var/tmp."""
    home.mkdir(parents=True, exist_ok=True)
    if reachable_by_server(home):
        return home / "postgres"
    fallback = Path("/var/tmp") / f"greenlang-registry-{hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]}"
    fallback.mkdir(parents=True, exist_ok=True)
    fallback.chmod(0o755)
    return fallback / "postgres"


@dataclass
class LocalPostgres:
    directory: Path
    port: int = 0

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"

    def dsn(self, user: str = SUPERUSER, password: str | None = None, database: str = DATABASE) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", SUPERUSER, "--", *argv]

    def _run(self, argv: list[str]) -> str:
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True)
        if result.returncode != 0:
            raise PostgresError(f"{' '.join(argv[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _chown(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SUPERUSER)
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 60) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        binaries = bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._chown()
            self._run([str(binaries / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                       "--encoding=UTF8", "--locale=C.UTF-8"])
        self._chown()
        self._run([str(binaries / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                   "-t", str(int(timeout)), "-o",
                   f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
                   " -c fsync=off -c full_page_writes=off", "start"])
        self._wait(timeout)
        if not self.sql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'").strip():
            self.sql("postgres", f"CREATE DATABASE {DATABASE}")

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run([str(bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresError(f"postgres did not accept connections on 127.0.0.1:{self.port}; see {self.log_file}")

    def sql(self, database: str, statement: str) -> str:
        psql = shutil.which("psql") or str(bin_dir() / "psql")
        return self._run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
                          "-v", "ON_ERROR_STOP=1", "-tAc", statement])

    def running(self) -> bool:
        result = subprocess.run(self._as_owner([str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "status"]),
                                capture_output=True)
        return result.returncode == 0

    def stop(self, mode: str = "fast") -> None:
        if self.data_dir.exists() and self.running():
            self._run([str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])
