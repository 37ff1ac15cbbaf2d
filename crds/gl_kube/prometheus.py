"""A tiny Prometheus HTTP API client: instant queries answered as one number (or None).

Only ``/api/v1/query``. A query whose answer is empty or NaN is ``None`` (nothing measured);
anything that keeps us from an answer (unreachable, timeout, HTTP error, a bad query) raises
``PrometheusError`` with a message saying which, so callers can report "inconclusive" honestly.
"""

from __future__ import annotations

import json
import math
import socket
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any


class PrometheusError(Exception):
    """No answer from Prometheus; the message says why (unreachable, timeout, HTTP status, query error)."""


class Prometheus:
    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read()).get("error") or error.reason
            except ValueError:
                detail = error.reason
            raise PrometheusError(f"Prometheus at {self.url} answered {error.code}: {detail}") from error
        except (socket.timeout, TimeoutError) as error:
            raise PrometheusError(f"Prometheus at {self.url} did not answer within {self.timeout:g}s") from error
        except urllib.error.URLError as error:
            raise PrometheusError(f"Prometheus at {self.url} is unreachable: {error.reason}") from error
        except (OSError, ValueError) as error:
            raise PrometheusError(f"Prometheus at {self.url}: {error}") from error
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url}: {body.get('errorType', 'error')}: {body.get('error')}")
        return body["data"]

    def query(self, expression: str, at: datetime | None = None) -> float | None:
        """The value of an instant query: the first sample of a vector, or a scalar; None if empty or NaN."""
        params = {"query": expression, "timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._get("/api/v1/query", params)
        result = data.get("result")
        if data.get("resultType") == "vector":
            if not result:
                return None
            raw = result[0]["value"][1]
        elif data.get("resultType") == "scalar":
            raw = result[1]
        else:
            raise PrometheusError(f"Prometheus answered a {data.get('resultType')} to {expression!r}; "
                                  "expected a vector or a scalar")
        value = float(raw)
        return None if math.isnan(value) else value

    def query_all(self, expressions: dict[str, str], at: datetime | None = None) -> dict[str, float | None]:
        """Each named query, all at the same instant."""
        return {name: self.query(expression, at) for name, expression in expressions.items()}
