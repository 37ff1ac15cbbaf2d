"""`gl-agent-runtime` as a real process, loading real artifacts from a real S3 server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from e2e import s3_server, wait
from e2e import REPO
from gl_api import artifact
from gl_devenv.cluster import free_port

BUCKET = "greenlang-agents"
AGENT = "climate-team/gl-cbam-calculator-v2"
CBAM = REPO / "examples" / "agents" / "cbam-calculator"
CBAM_240 = REPO / "examples" / "agents" / "cbam-calculator-2.4.0"
INVOKE = "/v1/capabilities/calculate-embedded-emissions:invoke"


def _http(method: str, url: str, body: bytes | dict | None = None, timeout: float = 10) -> tuple[int, object]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status, raw, kind = reply.status, reply.read(), reply.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in kind else raw.decode()


class Runtime:
    """One gl-agent-runtime process on 127.0.0.1, its JSON log in a file."""

    def __init__(self, workdir: Path, endpoint: str, uri: str, digest: str, version: str = "2.3.1",
                 drain_seconds: float = 20, agent: str = AGENT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"runtime-{self.port}.log"
        console_script = Path(sys.executable).parent / "gl-agent-runtime"
        command = [str(console_script)] if console_script.exists() else [sys.executable, "-m", "gl_runtime"]
        env = {**os.environ, **s3_server.CREDENTIALS, "GL_AGENT": agent, "GL_AGENT_VERSION": version,
               "GL_ARTIFACT_URI": uri, "GL_ARTIFACT_DIGEST": digest, "GL_S3_ENDPOINT": endpoint,
               "GL_HOST": "127.0.0.1", "GL_PORT": str(self.port), "GL_WORK_DIR": str(workdir / f"work-{self.port}"),
               "GL_DRAIN_SECONDS": str(drain_seconds)}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def ready(self) -> bool:
        try:
            return _http("GET", self.url + "/readyz", timeout=1)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30) -> Runtime:
        wait.until(lambda: self.ready() or self.process.poll() is not None, timeout=timeout, what="readyz")
        assert self.process.poll() is None, self.lines()
        return self

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def metrics(self) -> dict[tuple[str, tuple], float]:
        status, text = _http("GET", self.url + "/metrics")
        assert status == 200
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def s3() -> str:
    with s3_server.running(BUCKET) as endpoint:
        yield endpoint


def _upload(endpoint: str, data: bytes) -> tuple[str, str]:
    """Store ``data`` content-addressed, as `gl agent publish` does; the AgentVersion's uri and digest."""
    digest = artifact.digest(data)
    key = f"sha256/{digest.removeprefix('sha256:')}"
    boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}", digest


@pytest.fixture(scope="module")
def cbam(s3, tmp_path_factory):
    uri, digest = _upload(s3, artifact.pack(CBAM))
    runtime = Runtime(tmp_path_factory.mktemp("cbam"), s3, uri, digest).wait_ready()
    yield runtime
    runtime.stop()


def test_serves_the_calculator_from_the_verified_artifact(cbam):
    status, result = _http("POST", cbam.url + INVOKE, {"cnCode": "72081000", "quantityTonnes": 100,
                                                      "countryOfOrigin": "DE"})
    assert status == 200, result
    assert result == {"cnCode": "72081000", "quantityTonnes": 100.0, "directEmissions": 192.0,
                      "indirectEmissions": 26.0, "totalEmissions": 218.0, "unit": "tCO2e",
                      "source": "default-values"}
    status, turkish_cement = _http("POST", cbam.url + INVOKE, {"cnCode": "25232900", "quantityTonnes": 250.5,
                                                              "countryOfOrigin": "TR"})
    assert status == 200 and (turkish_cement["directEmissions"], turkish_cement["indirectEmissions"],
                              turkish_cement["totalEmissions"]) == (185.37, 12.525, 197.895)
    status, listed = _http("GET", cbam.url + "/v1/capabilities")
    assert status == 200 and listed["agent"] == AGENT and listed["version"] == "2.3.1"
    (capability,) = listed["capabilities"]
    assert capability["name"] == "calculate-embedded-emissions"
    assert capability["inputSchema"]["required"] == ["cnCode", "quantityTonnes", "countryOfOrigin"]
    assert _http("GET", cbam.url + "/healthz")[0] == 200
    ready = [line for line in cbam.lines() if line["msg"] == "ready"]
    assert ready and ready[0]["agent"] == AGENT and ready[0]["version"] == "2.3.1"
    assert {"ts", "level", "msg", "agent", "version"} <= set(ready[0])


def test_input_that_fails_the_schema_is_400_naming_the_field(cbam):
    status, body = _http("POST", cbam.url + INVOKE, {"cnCode": "7208", "quantityTonnes": -1})
    assert status == 400
    assert body["error"] == "invalid input" and body["capability"] == "calculate-embedded-emissions"
    paths = {d["path"]: d["message"] for d in body["details"]}
    assert set(paths) == {"/cnCode", "/quantityTonnes", "/countryOfOrigin"}
    assert "does not match" in paths["/cnCode"] and "less than the minimum of 0" in paths["/quantityTonnes"]
    assert "is a required property" in paths["/countryOfOrigin"]
    status, body = _http("POST", cbam.url + INVOKE, b"{not json")
    assert status == 400 and body["error"] == "invalid input" and "not JSON" in body["details"][0]["message"]
    status, body = _http("POST", cbam.url + INVOKE, b"[1, 2]")
    assert status == 400 and "must be a JSON object" in body["details"][0]["message"]


def test_value_error_is_422_and_an_unknown_capability_404(cbam):
    status, body = _http("POST", cbam.url + INVOKE, {"cnCode": "01012100", "quantityTonnes": 1,
                                                    "countryOfOrigin": "DE"})
    assert status == 422
    assert body["error"] == "unprocessable input" and "01012100 is not a good covered by CBAM" in body["message"]
    status, body = _http("POST", cbam.url + "/v1/capabilities/calculate-everything:invoke", {})
    assert status == 404
    assert body == {"error": "unknown capability", "capability": "calculate-everything",
                    "known": ["calculate-embedded-emissions"]}


def test_metrics_carry_the_contract_names_and_labels(cbam):
    before = cbam.metrics()
    for _ in range(3):
        assert _http("POST", cbam.url + INVOKE, {"cnCode": "76011000", "quantityTonnes": 1,
                                                 "countryOfOrigin": "NO"})[0] == 200
    _http("POST", cbam.url + INVOKE, {"cnCode": "1"})
    for _ in range(5):
        assert _http("GET", cbam.url + "/readyz")[0] == 200  # probes are not measured
    after = cbam.metrics()
    labels = lambda code: tuple(sorted({"agent": AGENT, "version": "2.3.1",  # noqa: E731
                                        "capability": "calculate-embedded-emissions", "code": code}.items()))
    key = ("greenlang_registry_agent_requests_total", labels("200"))
    assert after[key] - before.get(key, 0) == 3
    assert after[("greenlang_registry_agent_requests_total", labels("400"))] >= 1
    assert after[("greenlang_registry_agent_request_duration_seconds_count", labels("200"))] == after[key]
    buckets = sorted(float(dict(k[1])["le"]) for k in after
                     if k[0] == "greenlang_registry_agent_request_duration_seconds_bucket" and
                     dict(k[1])["code"] == "200")
    assert buckets == [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, float("inf")]
    assert after[("greenlang_registry_agent_requests_in_flight",
                  (("agent", AGENT), ("version", "2.3.1")))] == 0
    assert not [k for k in after if k[0] == "greenlang_registry_agent_request_errors_total"
                and dict(k[1])["code"] in ("200", "400", "404", "422")]
    # Probes and scrapes are not measured: every requests_total series together grew by the 4 invocations.
    def invocations(sample: dict) -> float:
        return sum(v for k, v in sample.items() if k[0] == "greenlang_registry_agent_requests_total")
    assert invocations(after) - invocations(before) == 4


def test_the_defective_2_4_0_answers_500_for_hot_rolled_steel_only(s3, tmp_path):
    uri, digest = _upload(s3, artifact.pack(CBAM_240))
    runtime = Runtime(tmp_path, s3, uri, digest, version="2.4.0").wait_ready()
    try:
        status, body = _http("POST", runtime.url + INVOKE, {"cnCode": "72081000", "quantityTonnes": 100,
                                                           "countryOfOrigin": "DE"})
        assert status == 500 and body["error"] == "agent failed"
        assert "Traceback" not in json.dumps(body) and "tuple indices" not in json.dumps(body)
        status, cement = _http("POST", runtime.url + INVOKE, {"cnCode": "25232900", "quantityTonnes": 100,
                                                             "countryOfOrigin": "DE"})
        assert status == 200 and cement["directEmissions"] == 64.0 and cement["reportingYear"] == 2026
        logged = [line for line in runtime.lines() if line.get("requestId") == body["requestId"]]
        assert logged and "TypeError: tuple indices must be integers or slices, not str" in logged[0]["traceback"]
        errors = runtime.metrics()
        key = tuple(sorted({"agent": AGENT, "version": "2.4.0", "capability": "calculate-embedded-emissions",
                            "code": "500"}.items()))
        assert errors[("greenlang_registry_agent_request_errors_total", key)] == 1
        assert errors[("greenlang_registry_agent_requests_total", key)] == 1
    finally:
        runtime.stop()


def test_a_wrong_digest_never_becomes_ready_and_exits_non_zero(s3, tmp_path):
    uri, digest = _upload(s3, artifact.pack(CBAM))
    wrong = "sha256:" + "0" * 64
    runtime = Runtime(tmp_path, s3, uri, wrong)
    seen_ready = False
    deadline = time.monotonic() + 30
    while runtime.process.poll() is None and time.monotonic() < deadline:
        seen_ready |= runtime.ready()
        time.sleep(0.05)
    assert runtime.process.wait(timeout=5) != 0
    assert not seen_ready
    errors = [line for line in runtime.lines() if line["level"] == "error"]
    assert errors and errors[0]["msg"].startswith(f"artifact digest mismatch for {uri}: expected {wrong}, got "
                                                  f"{digest}")
    assert not (tmp_path / f"work-{runtime.port}" / "artifact").exists()  # nothing unpacked


def _tiny_project(root: Path, body: str, capabilities: list[str]) -> Path:
    (root / "slowagent").mkdir(parents=True)
    (root / "slowagent" / "__init__.py").write_text(textwrap.dedent(body))
    (root / artifact.MANIFEST).write_text(yaml.safe_dump({
        "name": "slow-agent", "version": "0.1.0", "entrypoint": "slowagent:capabilities",
        "capabilities": [{"name": name, "inputSchema": {"type": "object"}} for name in capabilities]}))
    return root


def test_sigterm_drains_an_in_flight_request_then_exits_0(s3, tmp_path):
    project = _tiny_project(tmp_path / "slow", """
        import time

        def slow(request):
            time.sleep(request.get("seconds", 1.5))
            return {"slept": request.get("seconds", 1.5)}

        def capabilities():
            return {"sleep": slow}
        """, ["sleep"])
    uri, digest = _upload(s3, artifact.pack(project))
    runtime = Runtime(tmp_path, s3, uri, digest, version="0.1.0", agent="e2e/slow-agent").wait_ready()
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(
        reply=_http("POST", runtime.url + "/v1/capabilities/sleep:invoke", {"seconds": 2})))
    try:
        thread.start()
        in_flight = ("greenlang_registry_agent_requests_in_flight", (("agent", "e2e/slow-agent"),
                                                                     ("version", "0.1.0")))
        wait.until(lambda: runtime.metrics().get(in_flight) == 1, timeout=5, what="the request to be in flight")
        runtime.process.send_signal(signal.SIGTERM)
        assert wait.until(lambda: _http("GET", runtime.url + "/readyz", timeout=1) == (503, {"status": "draining"}),
                          timeout=1, interval=0.05, what="readyz 503 while draining")
        assert thread.is_alive() and runtime.process.poll() is None  # still serving the slow request
        thread.join(timeout=10)
        assert answer["reply"] == (200, {"slept": 2})
        assert runtime.process.wait(timeout=10) == 0
    finally:
        runtime.stop()
    messages = [line["msg"] for line in runtime.lines()]
    assert messages.index("signal received") < messages.index("draining") < messages.index("stopped")


def test_an_entrypoint_without_a_declared_capability_refuses_to_start(s3, tmp_path):
    project = _tiny_project(tmp_path / "partial", """
        capabilities = {"sleep": lambda request: {}}
        """, ["sleep", "wake"])
    uri, digest = _upload(s3, artifact.pack(project))
    runtime = Runtime(tmp_path, s3, uri, digest, version="0.1.0", agent="e2e/slow-agent")
    assert runtime.process.wait(timeout=30) == 1
    errors = [line["msg"] for line in runtime.lines() if line["level"] == "error"]
    assert errors == ["entrypoint slowagent:capabilities has no callable for capability wake; it offers: sleep"]
