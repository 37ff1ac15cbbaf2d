"""The objects an AgentDeployment runs as (pure builders)."""

import base64
from datetime import datetime, timedelta, timezone


from gl_operator import config, rollout, workloads

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
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env == {"GL_AGENT": "climate-team/gl-cbam-calculator-v2", "GL_AGENT_VERSION": "2.4.0",
                   "GL_ARTIFACT_URI": "s3://agents/sha256/aa", "GL_ARTIFACT_DIGEST": DIGEST, "GL_PORT": "8081"}
    assert "envFrom" not in container
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert from_secret["AWS_SECRET_ACCESS_KEY"] == {"name": "cbam-artifact-store", "key": "AWS_SECRET_ACCESS_KEY",
                                                    "optional": True}
    assert set(from_secret) == set(workloads.ARTIFACT_STORE_KEYS)
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


# --- Canary traffic by Gateway API HTTPRoute weights -----------------------------------------------

PARENTS = [{"name": "agents", "namespace": "greenlang-system"}]
CANARY = GLAD | {"spec": GLAD["spec"] | {"strategy": {"type": "Canary", "steps": [
    {"weight": 25, "pauseSeconds": 5}, {"weight": 50}, {"weight": 100}]}}}


def weights(route):
    (rule,) = route["spec"]["rules"]
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def test_split_service_and_route_names():
    assert (workloads.stable_service_name("cbam"), workloads.canary_service_name("cbam")) == \
        ("cbam-stable", "cbam-canary")
    assert len(workloads.stable_service_name("a" * 63)) == 63
    assert workloads.stable_service_name("a" * 63) != workloads.canary_service_name("a" * 63)


def test_split_services_select_one_version_each():
    stable, canary = workloads.split_services(GLAD, "2.3.1", "2.4.0")
    assert (stable["metadata"]["name"], canary["metadata"]["name"]) == ("cbam-stable", "cbam-canary")
    assert stable["spec"]["selector"] == {"registry.greenlang.ai/deployment": "cbam",
                                          "registry.greenlang.ai/version": "2.3.1"}
    assert canary["spec"]["selector"]["registry.greenlang.ai/version"] == "2.4.0"
    for svc in (stable, canary):
        assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    # No canary running: both select the stable version (the canary backend has weight 0).
    idle = workloads.split_services(GLAD, "2.4.0", None)
    assert [s["spec"]["selector"]["registry.greenlang.ai/version"] for s in idle] == ["2.4.0", "2.4.0"]


def test_http_route_weights_backends_and_parents():
    route = workloads.http_route(GLAD, 25, PARENTS)
    assert (route["apiVersion"], route["kind"], route["metadata"]["name"]) == \
        ("gateway.networking.k8s.io/v1", "HTTPRoute", "cbam")
    assert route["spec"]["parentRefs"] == PARENTS
    assert route["spec"]["parentRefs"][0] is not PARENTS[0]  # a copy: the config is never shared
    (rule,) = route["spec"]["rules"]
    assert rule == {"backendRefs": [
        {"group": "", "kind": "Service", "name": "cbam-stable", "port": 80, "weight": 75},
        {"group": "", "kind": "Service", "name": "cbam-canary", "port": 80, "weight": 25}]}
    assert weights(workloads.http_route(GLAD, 0)) == {"cbam-stable": 100, "cbam-canary": 0}
    assert weights(workloads.http_route(GLAD, 100)) == {"cbam-stable": 0, "cbam-canary": 100}
    assert weights(workloads.http_route(GLAD, 130)) == {"cbam-stable": 0, "cbam-canary": 100}
    assert "parentRefs" not in workloads.http_route(GLAD, 0)["spec"]
    assert "parentRefs" not in workloads.http_route(GLAD, 0, [])["spec"]


def test_route_and_split_services_carry_labels_and_owner():
    for obj in [workloads.http_route(GLAD, 10, PARENTS), *workloads.split_services(GLAD, "2.3.1", "2.4.0")]:
        assert obj["metadata"]["namespace"] == "abc-prod"
        assert obj["metadata"]["ownerReferences"] == [OWNER]
        assert obj["metadata"]["labels"] == workloads.common_labels(GLAD)


def test_canary_traffic_weight_per_step():
    spec = CANARY["spec"]

    def status(step, canary_ready=1, version="2.4.0"):
        return {"stableVersion": "2.3.1", "canaryVersion": version, "currentStep": step,
                "replicas": {"desired": 3, "ready": 3, "stable": 2, "canary": canary_ready}}

    assert [rollout.canary_traffic_weight(spec, status(step)) for step in (0, 1, 2)] == [25, 50, 100]
    assert rollout.canary_traffic_weight(spec, status(7)) == 100          # clamped to the last step
    assert rollout.canary_traffic_weight(spec, status(0, canary_ready=0)) == 0  # canary pods still starting
    assert rollout.canary_traffic_weight(spec, status(None, version=None)) == 0  # promoted / rolled back / none
    assert rollout.canary_traffic_weight(spec, {"stableVersion": "2.3.1"}) == 0
    no_steps = {**spec, "strategy": {"type": "Canary"}}
    assert rollout.canary_traffic_weight(no_steps, status(0)) == 100


def test_canary_traffic_weight_follows_the_rollout_plan():
    """The state machine's own status drives the weights: 25 while the first step waits, then 50."""
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    observed = {"cbam-2-3-1": rollout.Observed("cbam-2-3-1", "2.3.1", 2, 2, 2, 2),
                "cbam-2-4-0": rollout.Observed("cbam-2-4-0", "2.4.0", 1, 1, 1, 1)}
    glad = CANARY | {"status": {"stableVersion": "2.3.1", "canaryVersion": "2.4.0", "currentStep": 0,
                                "stepStartedAt": "2025-01-01T00:00:00Z", "phase": "Progressing"}}
    waiting = rollout.plan(glad, "2.4.0", [], observed, {}, analysis_enabled=False, now=now)
    assert rollout.canary_traffic_weight(glad["spec"], waiting.status) == 25
    later = rollout.plan(glad, "2.4.0", [], observed, {}, analysis_enabled=False, now=now + timedelta(seconds=6))
    assert later.status["currentStep"] == 1
    assert rollout.canary_traffic_weight(glad["spec"], later.status) == 50


def test_config_gateway_parents_and_check_interval():
    settings = config.OperatorConfig.model_validate(
        {"deployments": {"gateway": PARENTS, "gatewayCheckSeconds": 2}}).deployments
    assert (settings.gateway, settings.gateway_check_seconds) == (PARENTS, 2)
    assert (config.OperatorConfig().deployments.gateway, config.OperatorConfig().deployments.gateway_check_seconds) \
        == ([], 300)
