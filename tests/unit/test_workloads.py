"""The objects an AgentDeployment runs as (pure builders)."""

import base64

from gl_operator import workloads

GLAD = {"apiVersion": "registry.greenlang.ai/v1alpha1", "kind": "AgentDeployment",
        "metadata": {"name": "cbam", "namespace": "abc-prod", "uid": "uid-1", "generation": 2},
        "spec": {"agent": "climate-team/gl-cbam-calculator-v2", "channel": "certified", "replicas": 3}}
DIGEST = "sha256:" + "a" * 64
VERSION = {"metadata": {"namespace": "climate-team", "name": "gl-cbam-calculator-v2-2.4.0"},
           "spec": {"agent": "gl-cbam-calculator-v2", "version": "2.4.0",
                    "artifact": {"uri": "s3://agents/sha256/aa", "digest": DIGEST},
                    "runtime": {"port": 8081, "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                                            "limits": {"cpu": "1", "memory": "1Gi"}}}}}
OWNER = {"apiVersion": "registry.greenlang.ai/v1alpha1", "kind": "AgentDeployment", "name": "cbam", "uid": "uid-1",
         "controller": True, "blockOwnerDeletion": True}


def deployment(**kwargs):
    args = {"per_version": True, "runtime_image": "ghcr.io/greenlang/runtime:1"} | kwargs
    return workloads.deployment(GLAD, VERSION, workloads.deployment_name("cbam", "2.4.0"), 2, **args)


def test_names():
    assert workloads.deployment_name("cbam") == "cbam"
    assert workloads.deployment_name("cbam", "2.4.0-rc.1") == "cbam-2-4-0-rc-1"
    long = workloads.deployment_name("a" * 60, "10.20.30-beta.1")
    assert len(long) == 63 and long != workloads.deployment_name("a" * 60, "10.20.30-beta.2")
    assert workloads.secret_name("cbam") == "cbam-artifact-store"


def test_labels_and_owner_on_every_object():
    objects = [deployment(), workloads.service(GLAD), workloads.service_account(GLAD),
               workloads.artifact_secret(GLAD, {}), workloads.disruption_budget(GLAD),
               workloads.network_policy(GLAD, 8081, None), workloads.preview_service(GLAD, "2.4.0"),
               workloads.autoscaler(GLAD | {"spec": GLAD["spec"] | {"autoscaling": {"maxReplicas": 4}}}, "cbam")]
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "abc-prod"
        assert meta["ownerReferences"] == [OWNER]
        assert {k: meta["labels"][k] for k in (
            "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
            "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "registry.greenlang.ai/agent",
            "registry.greenlang.ai/deployment")} == {
            "app.kubernetes.io/name": "gl-cbam-calculator-v2", "app.kubernetes.io/instance": "cbam",
            "app.kubernetes.io/component": "agent", "app.kubernetes.io/part-of": "greenlang-registry",
            "app.kubernetes.io/managed-by": "greenlang-registry",
            "registry.greenlang.ai/agent": "gl-cbam-calculator-v2", "registry.greenlang.ai/deployment": "cbam"}


def test_deployment_and_pod_carry_the_version():
    obj = deployment()
    for labels in (obj["metadata"]["labels"], obj["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/version"] == "2.4.0"
        assert labels["registry.greenlang.ai/version"] == "2.4.0"
    assert obj["spec"]["selector"]["matchLabels"] == {"registry.greenlang.ai/deployment": "cbam",
                                                      "registry.greenlang.ai/version": "2.4.0"}
    assert obj["spec"]["replicas"] == 2


def test_rolling_update_selects_every_pod_and_autoscaled_leaves_replicas_out():
    obj = workloads.deployment(GLAD, VERSION, "cbam", None, per_version=False, runtime_image=None)
    assert obj["spec"]["selector"]["matchLabels"] == {"registry.greenlang.ai/deployment": "cbam"}
    assert "replicas" not in obj["spec"]


def test_restricted_security_context_probes_and_env():
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                      "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["serviceAccountName"] == "cbam" and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["name"] == "agent"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert container["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"GL_AGENT": "climate-team/gl-cbam-calculator-v2", "GL_AGENT_VERSION": "2.4.0",
                   "GL_ARTIFACT_URI": "s3://agents/sha256/aa", "GL_ARTIFACT_DIGEST": DIGEST, "GL_PORT": "8081"}
    assert container["envFrom"] == [{"secretRef": {"name": "cbam-artifact-store"}}]
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_image_from_the_version_else_the_runtime():
    assert deployment()["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/greenlang/runtime:1"
    pinned = "registry.example.com/cbam@sha256:" + "b" * 64
    version = {**VERSION, "spec": {**VERSION["spec"], "image": pinned}}
    obj = workloads.deployment(GLAD, version, "cbam", 1, per_version=False, runtime_image="x")
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == pinned
    assert workloads.image({"version": "1.0.0"}, None) is None


def test_resources_spec_then_version_then_defaults():
    assert workloads.resources({}, VERSION["spec"]) == VERSION["spec"]["runtime"]["resources"]
    spec = {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
    assert workloads.resources(spec, VERSION["spec"]) == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                          "limits": {"memory": "128Mi"}}
    assert workloads.resources({}, {}) == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    assert workloads.resources({"resources": {"requests": {"cpu": "1"}}}, {}) == {
        "requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}


def test_service_account_service_and_secret():
    assert workloads.service_account(GLAD)["automountServiceAccountToken"] is False
    svc = workloads.service(GLAD)
    assert svc["metadata"]["name"] == "cbam"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"registry.greenlang.ai/deployment": "cbam"}
    assert workloads.service(GLAD, "2.3.1")["spec"]["selector"]["registry.greenlang.ai/version"] == "2.3.1"
    secret = workloads.artifact_secret(GLAD, {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key",
                                              "AWS_DEFAULT_REGION": "eu-central-1",
                                              "GL_S3_ENDPOINT": "http://127.0.0.1:9000", "HOME": "/root"})
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key", "AWS_DEFAULT_REGION": "eu-central-1",
        "GL_S3_ENDPOINT": "http://127.0.0.1:9000"}


def test_autoscaler_pdb_and_network_policy():
    scaled = GLAD | {"spec": {**GLAD["spec"], "replicas": None,
                              "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 70}}}
    hpa = workloads.autoscaler(scaled, "cbam-2-4-0")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cbam-2-4-0"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert workloads.autoscaler(GLAD, "cbam") is None
    assert workloads.disruption_budget(GLAD)["spec"]["maxUnavailable"] == 1
    policy = workloads.network_policy(GLAD, 8081, "http://127.0.0.1:9000")
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8081}]
    assert policy["spec"]["egress"][-1]["ports"] == [{"protocol": "TCP", "port": 9000}]
