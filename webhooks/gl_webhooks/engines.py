"""Two engines, one policy set: an OPA server over REST, or the embedded regopy interpreter.

Each decision is a Rego package under ``policies/`` exposing ``deny`` and ``warn`` sets of
messages; both engines are asked the same query and must answer the same.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

POLICY_DIR = Path(__file__).resolve().parent.parent.parent / "policies"
DECISIONS = ("publish", "promotion", "deployment", "status_write", "approval", "images")


@dataclass(frozen=True)
class Verdict:
    deny: list[str] = field(default_factory=list)
    warn: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.deny


class PolicyError(RuntimeError):
    """The engine could not answer; admission fails closed with this message."""


class Engine(Protocol):
    name: str

    def decide(self, decision: str, data: dict[str, Any]) -> Verdict:
        ...


def package(decision: str) -> str:
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; one of {', '.join(DECISIONS)}")
    return f"greenlang.{decision}"


def _verdict(result: Any) -> Verdict:
    result = result or {}
    return Verdict(deny=sorted(result.get("deny") or []), warn=sorted(result.get("warn") or []))


def policy_files(directory: Path = POLICY_DIR) -> list[Path]:
    return sorted(p for p in directory.rglob("*.rego") if not p.name.endswith("_test.rego"))


class RegoEngine:
    """The embedded interpreter (rego-cpp via regopy): no server to run, the default."""

    name = "regopy"

    def __init__(self, directory: Path = POLICY_DIR):
        from regopy import Interpreter  # imported here: only this engine needs the native module

        self._interpreter = Interpreter()
        for path in policy_files(directory):
            self._interpreter.add_module(str(path.relative_to(directory)), path.read_text())
        self._lock = threading.Lock()  # one interpreter, one input at a time

    def decide(self, decision: str, data: dict[str, Any]) -> Verdict:
        from regopy import Input, RegoError

        # Only deny and warn, which every decision defines: regopy 1.5 aborts the process on a query
        # for an undefined rule, and writes strings taken from the input without escaping quotes, so
        # a whole-document query (which echoes the input) would not parse.
        query = f'result := {{"deny": data.{package(decision)}.deny, "warn": data.{package(decision)}.warn}}'
        with self._lock:
            try:
                self._interpreter.set_input(Input(data))
                output = self._interpreter.query(query)
            except (RegoError, ValueError) as error:  # ValueError: regopy could not parse its own output
                raise PolicyError(f"policy {decision} failed in regopy: {error}") from error
        if not output.ok():
            raise PolicyError(f"policy {decision} failed in regopy: {output}")
        return _verdict(json.loads(str(output.binding("result"))))


class OpaServerEngine:
    """An OPA server over REST (opa-python-client), for production and shared policy bundles."""

    name = "opa"

    def __init__(self, url: str, timeout: float = 2.0):
        from opa_client import OpaClient

        parsed = urllib.parse.urlparse(url)
        self._client = OpaClient(host=parsed.hostname, port=parsed.port or (443 if parsed.scheme == "https" else 8181),
                                 ssl=parsed.scheme == "https", timeout=timeout)
        self.url = url

    def decide(self, decision: str, data: dict[str, Any]) -> Verdict:
        try:
            reply = self._client.query_rule(input_data=data, package_path=package(decision).replace(".", "/"))
        except Exception as error:  # connection refused, timeout, HTTP 5xx: all fail closed
            raise PolicyError(f"OPA at {self.url} did not answer for {decision}: {error}") from error
        return _verdict(reply.get("result"))


def from_url(opa_url: str | None) -> Engine:
    """OPA server when a URL is configured, else the embedded interpreter."""
    return OpaServerEngine(opa_url) if opa_url else RegoEngine()
