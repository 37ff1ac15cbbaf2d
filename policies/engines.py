"""Two engines, one policy set: an OPA server over REST (the default), or the embedded regopy interpreter.

Both are asked the same question, ``data.greenlang.<decision>.decision`` with the same input, and
must answer alike (the parity tests hold them to it). An engine that cannot produce both
``deny`` and ``warn`` raises ``PolicyError``, and admission refuses the request: fail closed.

regopy compiles the policies once into a bundle and evaluates that per request (about 0.5 ms);
querying the modules directly recompiles them on every query (25-30 ms), which is what made
the embedded engine slow before.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gl_policy import DECISIONS, POLICY_DIR, REVISION_PACKAGE, package, policy_files, revision


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

    async def start(self) -> None: ...

    async def decide(self, decision: str, data: dict[str, Any]) -> Verdict: ...

    async def revision(self) -> Any: ...

    async def close(self) -> None: ...


def _entrypoint(decision: str) -> str:
    return package(decision).replace(".", "/") + "/decision"


def verdict(decision: str, result: Any) -> Verdict:
    """The engine's answer as a Verdict; anything but ``{deny: [...], warn: [...]}`` is a failure."""
    if not isinstance(result, dict) or not isinstance(result.get("deny"), list) \
            or not isinstance(result.get("warn"), list):
        raise PolicyError(f"policy {package(decision)} gave no decision (is it loaded?): {result!r:.200}")
    return Verdict(deny=sorted(result["deny"]), warn=sorted(result["warn"]))


REVISION_ENTRYPOINT = REVISION_PACKAGE.replace(".", "/") + "/revision"


async def check_ready(engine: Engine, expected_revision: str | None = None) -> None:
    """The engine serves exactly the policies beside this code (``greenlang.meta.revision``), and every
    decision package answers (an empty input denies nothing but proves it is loaded)."""
    expected = expected_revision or revision()
    served = await engine.revision()
    if served != expected:
        raise PolicyError(f"{engine.name} serves policies of revision {served!r:.80}, not {expected}: "
                          f"a stale or partial bundle (reload it from this release's policies)")
    for decision in DECISIONS:
        await engine.decide(decision, {})


class RegoEngine:
    """The embedded interpreter (rego-cpp via regopy): no server to run; `gl agent check --offline`."""

    name = "regopy"

    def __init__(self, directory: Path = POLICY_DIR):
        from regopy import Interpreter  # imported here: only this engine needs the native library

        self._interpreter = Interpreter()
        for path in policy_files(directory):
            self._interpreter.add_module(str(path.relative_to(directory)), path.read_text())
        self._bundle = self._interpreter.build(None, [_entrypoint(d) for d in DECISIONS] + [REVISION_ENTRYPOINT])
        self._lock = threading.Lock()  # one interpreter, one input at a time

    def _query(self, entrypoint: str, what: str, data: dict[str, Any]) -> Any:
        from regopy import Input, RegoError

        with self._lock:
            try:
                self._interpreter.set_input(Input(data))
                output = self._interpreter.query_bundle_entrypoint(self._bundle, entrypoint)
            except (RegoError, ValueError) as error:  # ValueError: regopy could not parse its own output
                raise PolicyError(f"policy {what} failed in regopy: {error}") from error
        if not output.ok():
            raise PolicyError(f"policy {what} failed in regopy: {output}")
        try:  # an undefined decision prints as `undefined`, which is no JSON
            expressions = json.loads(str(output)).get("expressions") or [None]
        except ValueError:
            expressions = [str(output)]
        return expressions[0]

    def evaluate(self, decision: str, data: dict[str, Any]) -> Verdict:
        return verdict(decision, self._query(_entrypoint(decision), package(decision), data))

    async def revision(self) -> Any:
        return await asyncio.to_thread(self._query, REVISION_ENTRYPOINT, REVISION_PACKAGE, {})

    async def start(self) -> None:
        pass

    async def decide(self, decision: str, data: dict[str, Any]) -> Verdict:
        return await asyncio.to_thread(self.evaluate, decision, data)

    async def close(self) -> None:
        pass


class OpaServerEngine:
    """An OPA server over REST (opa-python-client's async client, one keep-alive connection pool)."""

    name = "opa"

    def __init__(self, url: str, timeout: float = 2.0, token: str | None = None):
        from opa_client import AsyncOpaClient

        parsed = urllib.parse.urlparse(url)
        self.url = url
        # One retry: a dropped keep-alive connection is retried at once; a dead server fails closed.
        self._client = AsyncOpaClient(host=parsed.hostname or "127.0.0.1",
                                      port=parsed.port or (443 if parsed.scheme == "https" else 8181),
                                      ssl=parsed.scheme == "https", token=token, timeout=timeout, retries=1)

    async def start(self) -> None:
        await self._client.__aenter__()

    async def decide(self, decision: str, data: dict[str, Any]) -> Verdict:
        try:
            reply = await self._client.query_rule(input_data=data, package_path=package(decision).replace(".", "/"),
                                                  rule_name="decision")
        except Exception as error:  # connection refused, timeout, HTTP 4xx/5xx: all fail closed
            raise PolicyError(f"OPA at {self.url} did not answer for {decision}: {error}") from error
        return verdict(decision, reply.get("result"))

    async def revision(self) -> Any:
        try:
            reply = await self._client.query_rule(input_data={}, package_path=REVISION_PACKAGE.replace(".", "/"),
                                                  rule_name="revision")
        except Exception as error:
            raise PolicyError(f"OPA at {self.url} did not answer for {REVISION_PACKAGE}: {error}") from error
        return reply.get("result")

    async def close(self) -> None:
        await self._client.close_connection()
