"""`gl agent publish DIR`: pack an agent project, upload it to a real S3 server, publish it to a real API server."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from e2e import registry as reg
from e2e import s3_server
from e2e import REPO
from gl_api import GROUP, VERSION, artifact

BUCKET = "greenlang-agents"
CBAM = REPO / "examples" / "agents" / "cbam-calculator"
CBAM_240 = REPO / "examples" / "agents" / "cbam-calculator-2.4.0"


@pytest.fixture(scope="module")
def s3():
    with s3_server.running(BUCKET) as endpoint:
        yield endpoint


@pytest.fixture
def gl(cluster, s3, operator, tmp_path):
    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "COLUMNS": "250", "GL_S3_BUCKET": BUCKET,
               "GL_S3_ENDPOINT": s3, **s3_server.CREDENTIALS}
        return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args],
                              capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    return run


def test_publish_a_project_directory(gl, s3, api, namespace):
    manifest = artifact.read_manifest(CBAM)
    expected = artifact.digest(artifact.pack(CBAM))

    dry = gl("agent", "publish", str(CBAM), "--dry-run", "-n", namespace)
    assert dry.returncode == 0, dry.stderr
    agent_obj, version_obj = yaml.safe_load_all(dry.stdout)
    assert (agent_obj["kind"], version_obj["kind"]) == ("Agent", "AgentVersion")
    assert version_obj["spec"]["artifact"]["digest"] == expected
    assert f"packed {CBAM}" in dry.stderr and expected in dry.stderr

    published = gl("agent", "publish", str(CBAM), "-n", namespace)
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == "gl-cbam-calculator-v2@2.3.1"
    assert f"artifact uploaded to s3://{BUCKET}/sha256/" in published.stderr

    agent = reg.get(api, namespace, "agents", "gl-cbam-calculator-v2")["spec"]
    assert agent == manifest.agent.to_k8s()  # the manifest's agent block, visibility and regions included
    assert agent["displayName"] == "CBAM Carbon Calculator" and agent["domain"] == "sustainability.cbam"

    spec = reg.get(api, namespace, "agentversions", "gl-cbam-calculator-v2-2.3.1")["spec"]
    key = spec["artifact"]["uri"].removeprefix(f"s3://{BUCKET}/")
    stored = boto3.client("s3", endpoint_url=s3).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert spec["artifact"]["digest"] == f"sha256:{hashlib.sha256(stored).hexdigest()}" == expected
    assert spec["artifact"]["sizeBytes"] == len(stored)
    assert artifact.read_manifest(stored) == manifest
    assert spec["capabilities"] == [c.to_k8s() for c in manifest.capabilities]
    assert spec["runtime"] == manifest.runtime.to_k8s()
    assert spec["releaseNotes"] == manifest.release_notes

    # The next release of the same agent; a flag overrides the manifest's version.
    candidate = gl("agent", "publish", str(CBAM_240), "--version", "2.4.0-rc.1", "-n", namespace)
    assert candidate.returncode == 0, candidate.stderr
    assert candidate.stdout.strip() == "gl-cbam-calculator-v2@2.4.0-rc.1"
    assert "created Agent" not in candidate.stderr
    rc = reg.get(api, namespace, "agentversions", "gl-cbam-calculator-v2-2.4.0-rc.1")["spec"]
    assert "reportingYear" in rc["capabilities"][0]["inputSchema"]["properties"]
    assert rc["artifact"]["digest"] == artifact.digest(artifact.pack(CBAM_240)) != expected


def test_publish_dir_mistakes_are_one_clear_line(gl, api, namespace, tmp_path):
    both = gl("agent", "publish", str(CBAM), "--artifact", str(CBAM / "README.md"), "-n", namespace)
    assert both.returncode == 1 and "give either a project DIR or --artifact, not both" in both.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / artifact.MANIFEST).write_text("name: gl-broken\nversion: '1.0'\nentrypoint: x:y\n"
                                                         "capabilities: [{name: run}]\n")
    broken = gl("agent", "publish", str(tmp_path / "broken"), "-n", namespace)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "greenlang-agent.yaml is invalid: version: Value error, must be a Semantic Versioning" in \
        " ".join(broken.stderr.split())
    neither = gl("agent", "publish", "--name", "CBAM Carbon Calculator", "--version", "2.3.1", "-n", namespace)
    assert neither.returncode == 1 and neither.stderr.strip() == (
        "error: nothing to publish: give an agent project DIR, --artifact FILE or --image REF@sha256:..., or run in "
        "an agent project directory (one holding greenlang-agent.yaml)")
    nameless = gl("agent", "publish", "--name", "!!!", "--version", "1.0.0", "--image", f"x@sha256:{'0' * 64}",
                  "-n", namespace)
    assert nameless.returncode == 1 and "no agent id can be derived from the name '!!!'" in nameless.stderr
    assert "give --id" in nameless.stderr
    assert reg.custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "agents")["items"] == []


def test_publish_by_display_name_with_an_id_or_a_derived_one(gl, api, namespace, tmp_path):
    """The quick start's publish: a display name and an explicit id, run in the project directory (no DIR)."""
    project = tmp_path / "cbam-calculator"
    shutil.copytree(CBAM, project)
    published = gl("agent", "publish", "--name", "CBAM Carbon Calculator", "--id", "gl-cbam-calculator-v2",
                   "--version", "2.3.1", "--domain", "sustainability.cbam", "--type", "calculator", "-n", namespace,
                   cwd=project)
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == "gl-cbam-calculator-v2@2.3.1"
    assert "agent id gl-cbam-calculator-v2 (--id); reference gl-cbam-calculator-v2@2.3.1" in published.stderr
    assert f"packed {project}:" in published.stderr  # the current directory, in the artifact format
    agent = reg.get(api, namespace, "agents", "gl-cbam-calculator-v2")["spec"]
    assert (agent["displayName"], agent["domain"], agent["type"]) == (
        "CBAM Carbon Calculator", "sustainability.cbam", "calculator")
    spec = reg.get(api, namespace, "agentversions", "gl-cbam-calculator-v2-2.3.1")["spec"]
    assert spec["artifact"]["digest"] == artifact.digest(artifact.pack(CBAM))

    # No --id and no project: the id is derived from the display name (docs/cli.md), an image is the release.
    derived = gl("agent", "publish", "--name", "Scope 3 Connector (EU)", "--version", "0.1.0", "--domain",
                 "sustainability.scope3", "--type", "connector",
                 "--image", f"registry.example.com/s3@sha256:{'5' * 64}", "-n", namespace)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.strip() == "scope-3-connector-eu@0.1.0"
    assert "agent id scope-3-connector-eu (derived from the name 'Scope 3 Connector (EU)'; --id chooses another)" \
        in derived.stderr
    assert reg.get(api, namespace, "agents", "scope-3-connector-eu")["spec"]["displayName"] == "Scope 3 Connector (EU)"
    assert reg.status(api, namespace, "agentversions", "scope-3-connector-eu-0.1.0")["state"] == "draft"

    # The Agent exists: a different display name does not rename it, and says so.
    renamed = gl("agent", "publish", "--name", "CBAM Calculator", "--id", "gl-cbam-calculator-v2", "--version",
                 "2.3.2", "-n", namespace, cwd=project)
    assert renamed.returncode == 0, renamed.stderr
    assert "Agent gl-cbam-calculator-v2 exists, named 'CBAM Carbon Calculator'; --name names a new Agent only" in \
        " ".join(renamed.stderr.split())
    assert reg.get(api, namespace, "agents", "gl-cbam-calculator-v2")["spec"]["displayName"] == \
        "CBAM Carbon Calculator"


def test_publish_pins_the_servers_checksum_and_pull_verifies_it(gl, s3, api, namespace, tmp_path):
    packed = artifact.pack(CBAM)
    digest = artifact.digest(packed)
    key = f"sha256/{digest.removeprefix('sha256:')}"
    store = boto3.client("s3", endpoint_url=s3)
    # Someone with write access to the bucket plants other bytes of the same size at the content address,
    # claiming the digest in the object's metadata.
    store.put_object(Bucket=BUCKET, Key=key, Body=bytes(len(packed)),
                     Metadata={"sha256": digest.removeprefix("sha256:")})

    published = gl("agent", "publish", str(CBAM), "-n", namespace)
    assert published.returncode == 0, published.stderr
    assert f"artifact uploaded to s3://{BUCKET}/{key}" in published.stderr  # not "already in": its checksum differs
    head = store.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(packed).digest()).decode()
    assert store.get_object(Bucket=BUCKET, Key=key)["Body"].read() == packed
    pinned = reg.get(api, namespace, "agentversions", "gl-cbam-calculator-v2-2.3.1")["spec"]["artifact"]
    assert pinned["digest"] == digest

    pulled = gl("agent", "pull", "gl-cbam-calculator-v2@2.3.1", "-n", namespace)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == "gl-cbam-calculator-v2-2.3.1.zip"
    assert (tmp_path / "gl-cbam-calculator-v2-2.3.1.zip").read_bytes() == packed
    assert f"verified {digest} ({len(packed)} bytes)" in pulled.stderr

    # The object is replaced behind the registry's back: pull refuses and leaves the earlier file as it was.
    store.put_object(Bucket=BUCKET, Key=key, Body=packed + b"\0")
    target = tmp_path / "gl-cbam-calculator-v2-2.3.1.zip"
    tampered = gl("agent", "pull", "gl-cbam-calculator-v2@2.3.1", "-n", namespace, "-o", str(target))
    assert tampered.returncode == 1 and "Traceback" not in tampered.stderr
    message = " ".join(tampered.stderr.split())
    assert f"artifact digest mismatch for s3://{BUCKET}/{key}: expected {digest}, got " \
           f"{artifact.digest(packed + bytes(1))}" in message
    assert f"nothing was written to {target}" in message
    assert target.read_bytes() == packed and sorted(p.name for p in tmp_path.iterdir()) == [target.name]

    missing = gl("agent", "pull", "gl-cbam-calculator-v2@9.9.9", "-n", namespace)
    assert missing.returncode == 1 and f"gl-cbam-calculator-v2@9.9.9 is not published in namespace {namespace}" in \
        " ".join(missing.stderr.split())
