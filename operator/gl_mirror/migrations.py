"""Versioned schema migrations, applied at start, each in its own transaction.

Files ``migrations/NNNN_name.sql`` run in order; ``schema_migrations`` records version, name and
checksum. A migration that fails rolls back entirely, leaving the database as it was; a recorded
migration whose file changed afterwards is refused rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available(directory: Path = MIGRATIONS) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    return found


def apply(dsn: str, directory: Path = MIGRATIONS) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                            version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now())""")
        # One migrator at a time, even with several mirrors starting together.
        conn.execute("SELECT pg_advisory_lock(7412001)")
        try:
            done = {row[0]: row[1] for row in conn.execute("SELECT version, checksum FROM schema_migrations")}
            for migration in available(directory):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(f"migration {migration.version:04d}_{migration.name} changed after it "
                                             "was applied; add a new migration instead")
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                     (migration.version, migration.name, migration.checksum))
                except psycopg.Error as error:
                    raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed and was rolled "
                                         f"back: {error}") from error
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(7412001)")
    return applied_now
