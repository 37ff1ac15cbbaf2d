"""The image guard's input: a container running the registry's runtime image is judged by its artifact."""

from __future__ import annotations

import pytest

from gl_policy import inputs, views
from gl_webhooks import cli

RUNTIME = f"localhost/greenlang/agent-runtime@sha256:{'ab' * 32}"
ARTIFACT = f"sha256:{'22' * 32}"


def _version(name: str, state: str, image: str | None = None, artifact: str | None = ARTIFACT) -> views.Version:
    spec = {"agent": "cbam", "version": name, **({"image": image} if image else {}),
            **({"artifact": {"uri": "s3://b/k", "digest": artifact}} if artifact else {})}
    return views.Version.of({"metadata": {"namespace": "team", "name": f"cbam-{name}"}, "spec": spec,
                             "status": {"state": state}})


def _pod(*containers: dict) -> dict:
    return {"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": list(containers)}}


def _images(pod: dict, by_artifact: dict | None = None) -> list[dict]:
    return inputs.images(pod, "abc-prod", {}, {}, [views.image_digest(RUNTIME)], by_artifact)["images"]


def test_the_version_view_keeps_the_artifact_digest():
    version = _version("2.3.1", "certified")
    assert version.artifact_digest == ARTIFACT
    assert version.as_input()["spec"]["artifact"] == {"digest": ARTIFACT}
    assert _version("2.3.1", "certified", artifact=None).artifact_digest is None


def test_a_runtime_container_is_judged_by_its_literal_artifact_digest():
    pod = _pod({"name": "a", "image": RUNTIME, "env": [{"name": "GL_ARTIFACT_DIGEST", "value": ARTIFACT}]})
    assert inputs.runtime_artifact_digests(pod["spec"], [views.image_digest(RUNTIME)]) == {ARTIFACT}
    [image] = _images(pod, {ARTIFACT: [_version("2.3.1", "certified")]})
    assert image == {"image": RUNTIME, "digest": views.image_digest(RUNTIME), "runtime": True, "artifact": ARTIFACT,
                     "overrides": [], "versions": [{"ref": "cbam@2.3.1", "state": "certified"}]}


@pytest.mark.parametrize("env, env_from", [
    ([], None),
    ([{"name": "GL_ARTIFACT_DIGEST", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], None),
    ([{"name": "GL_ARTIFACT_DIGEST", "value": ARTIFACT},
      {"name": "GL_ARTIFACT_DIGEST", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}], None),
    ([{"name": "GL_ARTIFACT_DIGEST", "value": "$(OTHER)"}], None),
    ([], [{"configMapRef": {"name": "c"}}]),
])
def test_an_artifact_digest_that_cannot_be_checked_is_null(env, env_from):
    container = {"name": "a", "image": RUNTIME, "env": env, **({"envFrom": env_from} if env_from else {})}
    [image] = _images(_pod(container), {ARTIFACT: [_version("2.3.1", "certified")]})
    assert image["runtime"] is True and image["artifact"] is None and image["versions"] == []


def test_the_runtime_images_own_versions_do_not_count_and_overrides_are_reported():
    pod = _pod({"name": "a", "image": RUNTIME, "command": ["sh"], "args": ["-c", "x"],
                "env": [{"name": "GL_ARTIFACT_DIGEST", "value": ARTIFACT}]},
               {"name": "b", "image": f"r/cbam@sha256:{'11' * 32}"})
    by_digest = {views.image_digest(RUNTIME): [_version("9.9.9", "certified", image=RUNTIME)],
                 f"sha256:{'11' * 32}": [_version("2.3.1", "certified")]}
    runtime, other = inputs.images(pod, "abc-prod", {}, by_digest, [views.image_digest(RUNTIME)], {})["images"]
    assert runtime["versions"] == [] and runtime["overrides"] == ["command", "args"]
    assert other == {"image": f"r/cbam@sha256:{'11' * 32}", "digest": f"sha256:{'11' * 32}",
                     "versions": [{"ref": "cbam@2.3.1", "state": "certified"}]}


def test_without_runtime_images_the_input_is_unchanged():
    pod = _pod({"name": "a", "image": RUNTIME, "env": [{"name": "GL_ARTIFACT_DIGEST", "value": ARTIFACT}]})
    assert inputs.images(pod, "abc-prod", {}, {})["images"] == [
        {"image": RUNTIME, "digest": views.image_digest(RUNTIME), "versions": []}]


def test_the_webhook_server_refuses_a_runtime_image_by_tag():
    assert cli.runtime_images([RUNTIME, RUNTIME]) == [RUNTIME]
    with pytest.raises(cli.Unpinned, match="localhost/greenlang/agent-runtime:1.0 is not pinned by digest"):
        cli.runtime_images(["localhost/greenlang/agent-runtime:1.0"])
    assert cli.main(["run", "--tls-cert", "c", "--tls-key", "k", "--runtime-image", "r/runtime:latest"]) == 2


def test_loader_variables_and_mounts_other_than_scratch_space_are_overrides():
    pod = _pod({"name": "a", "image": RUNTIME, "env": [{"name": "GL_ARTIFACT_DIGEST", "value": ARTIFACT},
                                                        {"name": "LD_PRELOAD", "value": "/tmp/x.so"},
                                                        {"name": "PYTHONPATH", "value": "/tmp"}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "code", "mountPath": "/tmp/code"},
                                 {"name": "scratch", "mountPath": "/usr/lib/python3/dist-packages"}]})
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}, {"name": "code", "configMap": {"name": "c"}},
                              {"name": "scratch", "emptyDir": {}}]
    [image] = inputs.images(pod, "abc-prod", {}, {}, [views.image_digest(RUNTIME)], {})["images"]
    assert image["overrides"] == ["env LD_PRELOAD", "env PYTHONPATH", "volumeMounts /tmp/code",
                                  "volumeMounts /usr/lib/python3/dist-packages"]


def test_the_operators_own_pod_template_has_no_overrides():
    """What the operator deploys must pass its own guard: env, envFrom and the /tmp emptyDir only."""
    from gl_operator import workloads

    glad = {"metadata": {"name": "cbam", "namespace": "abc-prod", "uid": "u"},
            "spec": {"agent": "team/cbam", "version": "2.3.1", "replicas": 1}}
    version = {"metadata": {"name": "cbam-2.3.1", "namespace": "team"},
               "spec": {"agent": "cbam", "version": "2.3.1",
                        "artifact": {"uri": "s3://b/sha256/x", "digest": ARTIFACT}}}
    template = workloads.pod_template(glad, version, RUNTIME, {})
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": template["spec"]}
    [image] = inputs.images(pod, "abc-prod", {}, {}, [views.image_digest(RUNTIME)],
                            {ARTIFACT: [_version("2.3.1", "certified")]})["images"]
    assert image["overrides"] == [] and image["artifact"] == ARTIFACT and image["versions"]


def test_the_service_account_token_volume_is_not_an_override_but_a_look_alike_is():
    token = {"name": "kube-api-access-x", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}, {"configMap": {"name": "kube-root-ca.crt"}},
        {"downwardAPI": {"items": [{"path": "namespace"}]}}]}}
    look_alike = {"name": "fake", "projected": {"sources": [{"configMap": {"name": "my-library"}}]}}
    mount = "/var/run/secrets/kubernetes.io/serviceaccount"
    for volume, expected in ((token, []), (look_alike, [f"volumeMounts {mount}"])):
        pod = _pod({"name": "a", "image": RUNTIME, "env": [{"name": "GL_ARTIFACT_DIGEST", "value": ARTIFACT}],
                    "volumeMounts": [{"name": volume["name"], "mountPath": mount}]})
        pod["spec"]["volumes"] = [volume]
        [image] = inputs.images(pod, "abc-prod", {}, {}, [views.image_digest(RUNTIME)], {})["images"]
        assert image["overrides"] == expected
