"""JSON logs, one object per line: ts, level, msg, agent, version, then the event's own fields."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger("gl_runtime")
_identity: dict[str, str | None] = {"agent": None, "version": None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"),
            "level": record.levelname.lower(), "msg": record.getMessage(), **_identity,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]  # library loggers (boto3, aiohttp) also come out as JSON
    root.setLevel(logging.WARNING)
    logger.setLevel(level.upper())


def identify(agent: str | None, version: str | None) -> None:
    """Every later line carries the agent and version it serves."""
    _identity.update(agent=agent, version=version)


def info(msg: str, **fields: Any) -> None:
    logger.info(msg, extra={"fields": fields})


def warning(msg: str, **fields: Any) -> None:
    logger.warning(msg, extra={"fields": fields})


def error(msg: str, exc_info: bool = False, **fields: Any) -> None:
    logger.error(msg, exc_info=exc_info, extra={"fields": fields})
