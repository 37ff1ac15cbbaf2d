"""The Helm chart `helm/greenlang-registry`: it lints, renders, applies server-side, installs and upgrades.

helm is built from its Go module like the other tools. The dry run goes to the session's control
plane, which already holds the registry's CRDs and policies (installed by kubectl), so it shows the
chart applies over them (``--force-conflicts`` takes the fields kubectl owned). Installing for real
happens on a control plane of its own: the chart registers webhooks and an APIService that fail
closed, and its pods are kwok's pretend pods that answer nothing, which the session's other tests
must not meet.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from e2e import REPO, wait
from gl_api import kinds
from gl_devenv import build
from gl_devenv import cluster as local_cluster
from gl_devenv.cluster import free_port
from gl_policy import engines, revision

CHART = REPO / "helm" / "greenlang-registry"
NAMESPACE = "greenlang-system"
RELEASE = "greenlang-registry"
CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "APIService",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
                  "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
                  "FlowSchema", "PriorityLevelConfiguration"}
VARIANTS = {
    "defaults": [],
    "cert-manager": ["--set", "certManager.enabled=true"],
    "external-postgres-and-audit": ["--set", "postgres.dsnSecret.name=registry-db", "--set",
                                    "postgres.dsnSecret.key=url", "--set", "mirror.audit.enabled=true",
                                    "--set", "mirror.audit.clientCaSecret=apiserver-audit-ca"],
    "observability-and-fairness": ["--set", "monitoring.serviceMonitor.enabled=true", "--set",
                                   "monitoring.prometheusRule.enabled=true", "--set", "monitoring.dashboards.enabled=true",
                                   "--set", "apiPriorityAndFairness.enabled=true", "--set",
                                   "argocd.healthChecks.enabled=true"],
}


@pytest.fixture(scope="module")
def helm() -> Path:
    build.ensure(["helm"])
    return build.binary("helm")


def run(helm: Path, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/gl-helm/cache", "HELM_CONFIG_HOME": "/tmp/gl-helm/config",
           "HELM_DATA_HOME": "/tmp/gl-helm/data"}
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, timeout=300)


def render(helm: Path, *values: str, chart: Path = CHART) -> list[dict]:
    rendered = run(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *values)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pem(b64: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(b64))


# ----------------------------------------------------------------------------------------- lint, template


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_passes(helm, variant):
    linted = run(helm, "lint", str(CHART), "--namespace", NAMESPACE, "--strict", *VARIANTS[variant])
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in linted.stdout


def test_default_render_is_a_complete_self_signed_install(helm):
    objects = render(helm)
    # Every namespaced object names its namespace, so `helm template | kubectl apply -f -` (and Argo CD) put it there.
    assert not [f"{o['kind']}/{o['metadata']['name']}" for o in objects
                if o["kind"] not in CLUSTER_SCOPED and "namespace" not in o["metadata"]]
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert sorted(o["metadata"]["name"] for o in crds) == sorted(k.crd_name for k in kinds.ALL)
    assert all(o["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for o in crds)

    operator = one(objects, "Deployment", "greenlang-registry-operator")
    assert operator["spec"]["replicas"] == 2
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-election-namespace=$(POD_NAMESPACE)" in args and "--leader-identity=$(POD_NAME)" in args
    webhooks = one(objects, "Deployment", "greenlang-registry-webhooks")
    assert webhooks["spec"]["replicas"] == 2
    containers = {c["name"]: c for c in webhooks["spec"]["template"]["spec"]["containers"]}
    assert containers["opa"]["args"][:7] == ["run", "--server", "--addr=127.0.0.1:8181", "--diagnostic-addr=0.0.0.0:8282",
                                             "--authentication=token", "--authorization=basic",
                                             "--skip-version-check"]
    assert "--opa-token-file=/etc/gl-webhooks/opa/token" in containers["webhooks"]["args"]
    assert ("--operator-user=system:serviceaccount:greenlang-system:greenlang-registry-operator"
            in containers["webhooks"]["args"])

    # Restricted Pod Security, resources and probes on every pod of the chart.
    for workload in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert container["resources"]["requests"] and container["resources"]["limits"], where
            assert container["livenessProbe"] and container["readinessProbe"], where
    paths = {c["readinessProbe"]["httpGet"]["path"] for o in objects if o["kind"] == "Deployment"
             for c in o["spec"]["template"]["spec"]["containers"] if c["name"] != "opa"}
    assert paths <= {"/healthz", "/readyz"} and "/readyz" in paths

    # One CA: the webhook configurations and the APIService trust it, and it signed both serving certificates.
    ca = pem(one(objects, "Secret", "greenlang-registry-ca")["data"]["ca.crt"])
    bundles = {w["clientConfig"]["caBundle"] for kind in ("ValidatingWebhookConfiguration",
                                                          "MutatingWebhookConfiguration")
               for w in one(objects, kind, "greenlang-registry")["webhooks"]}
    bundles.add(one(objects, "APIService", "v1alpha1.search.registry.greenlang.ai")["spec"]["caBundle"])
    assert {pem(b) for b in bundles} == {ca}
    for component in ("webhooks", "mirror"):
        secret = one(objects, "Secret", f"greenlang-registry-{component}-tls")
        leaf = pem(secret["data"]["tls.crt"])
        leaf.verify_directly_issued_by(ca)
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
        assert f"greenlang-registry-{component}.greenlang-system.svc" in names
    service = one(objects, "ValidatingWebhookConfiguration", "greenlang-registry")["webhooks"][0]["clientConfig"]
    assert service["service"] == {"name": "greenlang-registry-webhooks", "namespace": NAMESPACE,
                                  "path": "/publish", "port": 443}

    # The admission policies trust the chart's ServiceAccounts by name.
    identities = one(objects, "ConfigMap", "greenlang-registry-identities")
    assert identities["data"] == {"operator": "system:serviceaccount:greenlang-system:greenlang-registry-operator",
                                  "webhooks": "system:serviceaccount:greenlang-system:greenlang-registry-webhooks"}
    # Each component's least-privilege roles are bound to its own ServiceAccount, under the roles' names.
    for component in ("operator", "webhooks", "mirror"):
        source = REPO / "crds" / f"rbac_{component}.yaml"
        if not source.exists():
            continue
        for role in (r for r in yaml.safe_load_all(source.read_text()) if r and r["kind"] in ("ClusterRole", "Role")):
            binding = one([o for o in objects if o["metadata"].get("namespace", NAMESPACE) ==
                           role["metadata"].get("namespace", NAMESPACE)], role["kind"] + "Binding",
                          role["metadata"]["name"])
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"greenlang-registry-{component}",
                                            "namespace": NAMESPACE}]
    # The bundled Postgres for trying it out, reached by the mirror through the generated DSN.
    one(objects, "StatefulSet", "greenlang-registry-postgres")
    dsn = base64.b64decode(one(objects, "Secret", "greenlang-registry-postgres")["data"]["dsn"]).decode()
    assert dsn.startswith("postgresql://registry:") and dsn.endswith(
        "@greenlang-registry-postgres.greenlang-system.svc:5432/greenlang")


def test_cert_manager_render_leaves_the_ca_to_cert_manager(helm):
    objects = render(helm, *VARIANTS["cert-manager"])
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].endswith(("-ca", "-tls"))]
    certificates = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Certificate"}
    assert certificates["greenlang-registry-webhooks"]["spec"]["secretName"] == "greenlang-registry-webhooks-tls"
    assert certificates["greenlang-registry-mirror"]["spec"]["secretName"] == "greenlang-registry-mirror-tls"
    assert certificates["greenlang-registry-ca"]["spec"]["isCA"] is True
    for kind, name, source in (("ValidatingWebhookConfiguration", "greenlang-registry", "webhooks"),
                               ("MutatingWebhookConfiguration", "greenlang-registry", "webhooks"),
                               ("APIService", "v1alpha1.search.registry.greenlang.ai", "mirror")):
        obj = one(objects, kind, name)
        assert obj["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
            f"{NAMESPACE}/greenlang-registry-{source}"
        configs = [w["clientConfig"] for w in obj.get("webhooks", [])] or [obj["spec"]]
        assert all("caBundle" not in c for c in configs), kind


def test_external_postgres_and_the_audit_webhook_render(helm):
    objects = render(helm, *VARIANTS["external-postgres-and-audit"])
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    mirror = one(objects, "Deployment", "greenlang-registry-mirror")
    container = mirror["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "GL_MIRROR_DSN", "valueFrom": {"secretKeyRef": {"name": "registry-db", "key": "url"}}} \
        in container["env"]
    assert "--audit-address=0.0.0.0:9443" in container["args"]
    assert mirror["spec"]["strategy"] == {"type": "Recreate"}
    one(objects, "Service", "greenlang-registry-mirror-audit")
    one(objects, "PersistentVolumeClaim", "greenlang-registry-mirror-audit-spool")


@pytest.mark.parametrize(("values", "message"), [
    (["--namespace", "registry"], "install the chart into the namespace greenlang-system"),
    (["--set", "postgres.bundled.enabled=false"], "set postgres.dsnSecret.name"),
    (["--set", "webhook.replicas=3"], "additional properties 'webhook' not allowed"),
    (["--set", "operator.config.promotion.minEvaluationScore=2"], "/operator/config/promotion/minEvaluationScore"),
])
def test_wrong_values_are_refused_naming_the_fix(helm, values, message):
    rendered = run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values)
    assert rendered.returncode != 0 and message in rendered.stderr, rendered.stderr


def test_opa_serves_the_rendered_bundle_to_the_token_holder_only(helm, tmp_path):
    """Lay out the rendered ConfigMap as the kubelet mounts it and run OPA with the sidecar's own arguments."""
    objects = render(helm)
    config_map = one(objects, "ConfigMap", "greenlang-registry-policies")
    deployment = one(objects, "Deployment", "greenlang-registry-webhooks")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "policies")
    data_dir = tmp_path / "policies" / "..2026_11_27_00_00_00.000000000"
    for item in volume["configMap"]["items"]:
        target = data_dir / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config_map["data"][item["key"]])
    (tmp_path / "policies" / "..data").symlink_to(data_dir.name)
    for top in {Path(item["path"]).parts[0] for item in volume["configMap"]["items"]}:
        (tmp_path / "policies" / top).symlink_to(Path("..data") / top)
    assert set(config_map["data"]) == {item["key"] for item in volume["configMap"]["items"]}

    token = base64.b64decode(one(objects, "Secret", "greenlang-registry-opa-token")["data"]["token"]).decode()
    opa = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "opa")
    port, diagnostic = free_port(), free_port()
    args = [a.replace("127.0.0.1:8181", f"127.0.0.1:{port}").replace("0.0.0.0:8282", f"127.0.0.1:{diagnostic}")
            .replace("/policies", str(tmp_path / "policies")) for a in opa["args"]]
    build.ensure(["opa"])
    process = subprocess.Popen([str(build.binary("opa")), *args], env={**os.environ, "GL_OPA_TOKEN": token},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def status(url: str, bearer: str | None = None) -> int:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})
            try:
                with urllib.request.urlopen(request, timeout=2) as reply:
                    return reply.status
            except urllib.error.HTTPError as error:
                return error.code
            except OSError:
                return 0

        assert wait.until(lambda: status(f"http://127.0.0.1:{diagnostic}/health?bundles") == 200, timeout=30,
                          what="OPA's bundle active")
        data = f"http://127.0.0.1:{port}/v1/data/greenlang/meta/revision"
        assert status(data) == 401 and status(data, "not-the-token") == 401
        assert status(data, token) == 200
        # What the webhook server checks before it is ready: OPA serves exactly this release's policies.
        engine = engines.OpaServerEngine(f"http://127.0.0.1:{port}", token=token)

        async def check() -> None:
            await engine.start()
            try:
                await engines.check_ready(engine, revision())
            finally:
                await engine.close()

        asyncio.run(check())
    finally:
        process.terminate()
        process.wait(timeout=10)


# ----------------------------------------------------------------------------------- against a control plane


def test_prometheus_loads_the_registry_alerts_and_answers_the_dashboards(helm, tmp_path):
    """The PrometheusRule's groups, loaded by a real Prometheus (it refuses to start on a bad expression),
    which then answers every query of the four dashboards."""
    objects = render(helm, "--set", "monitoring.prometheusRule.enabled=true", "--set",
                     "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.dashboards.enabled=true")
    dashboards = [json.loads(text) for o in objects if o["kind"] == "ConfigMap" and "dashboard" in o["metadata"]["name"]
                  for text in o["data"].values()]
    assert sorted(d["uid"] for d in dashboards) == ["greenlang-registry", "greenlang-runtime", "greenlang-slo",
                                                    "greenlang-tenant"]
    rule = one(objects, "PrometheusRule", "greenlang-registry")
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceMonitor"} == {
        f"greenlang-registry-{c}" for c in ("operator", "webhooks", "mirror")}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    (tmp_path / "prometheus.yaml").write_text(yaml.safe_dump({"rule_files": [str(tmp_path / "rules.yaml")]}))
    build.ensure(["prometheus"])
    port = free_port()
    process = subprocess.Popen([str(build.binary("prometheus")), f"--config.file={tmp_path / 'prometheus.yaml'}",
                                f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def rules() -> dict | None:
            if process.poll() is not None:
                pytest.fail(f"Prometheus refused the rules: {process.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=2) as reply:
                    return json.loads(reply.read())["data"]
            except OSError:
                return None

        loaded = wait.until(rules, timeout=60, what="Prometheus serving its rules")
        names = {r["name"] for group in loaded["groups"] for r in group["rules"]}
        for slo in ("Get", "Search", "Publish"):
            assert f"GreenLangRegistry{slo}LatencyBudgetBurn" in names
            assert f"greenlang_registry:slo_{slo.lower()}_slow_ratio:rate1h" in names
        assert {"GreenLangRegistryMirrorLag", "GreenLangRegistryAuditAnchorStale", "GreenLangRegistryOperatorDown",
                "GreenLangRegistryAdmissionErrors"} <= names
        assert all(r["health"] != "err" for group in loaded["groups"] for r in group["rules"])
        for board in dashboards:
            for panel in board["panels"]:
                for target in panel["targets"]:
                    query = urllib.parse.urlencode({"query": target["expr"].replace("$namespace", ".*")})
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{query}", timeout=5) as reply:
                        assert json.loads(reply.read())["status"] == "success", (board["title"], panel["title"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_rendered_chart_applies_server_side_dry_run(helm, cluster):
    # API Priority and Fairness on too: its FlowSchemas and PriorityLevelConfiguration are validated by the server.
    rendered = run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--set",
                   "apiPriorityAndFairness.enabled=true")
    assert rendered.returncode == 0, rendered.stderr
    applied = cluster.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                              "--field-manager=helm-chart-e2e", "-f", "-",
                              input=rendered.stdout, check=False)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert len(lines) == len([d for d in yaml.safe_load_all(rendered.stdout) if d])
    assert all(line.endswith("(server dry run)") for line in lines), lines


@pytest.fixture(scope="module")
def chart_cluster(tmp_path_factory) -> Iterator[local_cluster.LocalCluster]:
    cluster = local_cluster.LocalCluster(tmp_path_factory.mktemp("chart") / "cluster")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _json(cluster, *args: str) -> dict:
    got = cluster.kubectl(*args, "-o", "json", check=False)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def _printer_columns(cluster, crd: str) -> list[str]:
    return [c["name"] for c in _json(cluster, "get", "crd", crd)["spec"]["versions"][0]["additionalPrinterColumns"]]


def test_install_upgrade_uninstall_then_apply_server_side(helm, chart_cluster, tmp_path):
    kubeconfig = chart_cluster.kubeconfig
    installed = run(helm, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
                    kubeconfig=kubeconfig)
    assert installed.returncode == 0, installed.stderr
    assert "STATUS: deployed" in installed.stdout
    chart_cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                          *(f"crd/{k.crd_name}" for k in kinds.ALL))
    # NOTES' first command, as a user would paste it (kwok's node plays the kubelet: the pods turn ready).
    first = next(line.strip() for line in installed.stdout.splitlines() if line.strip().startswith("kubectl wait"))
    waited = chart_cluster.kubectl(*first.split()[1:], check=False)
    assert waited.returncode == 0, waited.stderr
    assert set(waited.stdout.splitlines()) == {f"deployment.apps/greenlang-registry-{c} condition met"
                                               for c in ("mirror", "operator", "webhooks")}
    identities = _json(chart_cluster, "get", "configmap", "greenlang-registry-identities", "-n", NAMESPACE)
    assert identities["data"]["operator"] == "system:serviceaccount:greenlang-system:greenlang-registry-operator"
    validating = _json(chart_cluster, "get", "validatingwebhookconfiguration", "greenlang-registry")
    ca_bundle = validating["webhooks"][0]["clientConfig"]["caBundle"]
    webhook_cert = _json(chart_cluster, "get", "secret", "greenlang-registry-webhooks-tls", "-n", NAMESPACE)
    token = _json(chart_cluster, "get", "secret", "greenlang-registry-opa-token", "-n", NAMESPACE)["data"]["token"]
    agentversions = kinds.AGENT_VERSION.crd_name
    assert "Published" not in _printer_columns(chart_cluster, agentversions)

    # An upgrade whose chart changes a CRD changes it in the API server.
    patched = tmp_path / "greenlang-registry"
    shutil.copytree(CHART, patched)
    template = patched / "templates" / f"crd-{agentversions}.yaml"
    text = template.read_text()
    column = "    additionalPrinterColumns:\n"
    assert column in text
    template.write_text(text.replace(column, column + "    - name: Published\n      type: date\n"
                                     "      jsonPath: .metadata.creationTimestamp\n      priority: 1\n", 1))
    upgraded = run(helm, "upgrade", RELEASE, str(patched), "--namespace", NAMESPACE, kubeconfig=kubeconfig)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "REVISION: 2" in upgraded.stdout
    assert wait.until(lambda: "Published" in _printer_columns(chart_cluster, agentversions), timeout=30,
                      what="the upgraded printer column")
    # The CA and OPA's token stay; the serving certificate is re-issued from the same CA.
    assert _json(chart_cluster, "get", "validatingwebhookconfiguration", "greenlang-registry")[
        "webhooks"][0]["clientConfig"]["caBundle"] == ca_bundle
    assert _json(chart_cluster, "get", "secret", "greenlang-registry-opa-token", "-n", NAMESPACE)["data"]["token"] \
        == token
    reissued = _json(chart_cluster, "get", "secret", "greenlang-registry-webhooks-tls", "-n", NAMESPACE)
    assert reissued["data"]["tls.crt"] != webhook_cert["data"]["tls.crt"]
    pem(reissued["data"]["tls.crt"]).verify_directly_issued_by(pem(ca_bundle))

    # Uninstalling keeps the CRDs (and so every registry object); the rest goes.
    removed = run(helm, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout=120s",
                  kubeconfig=kubeconfig)
    assert removed.returncode == 0, removed.stderr
    assert "Published" in _printer_columns(chart_cluster, agentversions)
    for kind, name in (("apiservice", "v1alpha1.search.registry.greenlang.ai"),
                       ("validatingwebhookconfiguration", "greenlang-registry")):
        gone = chart_cluster.kubectl("get", kind, name, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr, kind

    # The same chart, rendered and applied server-side (as Argo CD does), takes over the kept CRDs.
    rendered = run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE)
    applied = chart_cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=helm-chart-e2e",
                                    "-f", "-", input=rendered.stdout, check=False)
    assert applied.returncode == 0, applied.stderr
    assert "Published" not in _printer_columns(chart_cluster, agentversions)
    deadline = time.monotonic() + 120
    for component in ("operator", "webhooks", "mirror"):
        rolled = chart_cluster.kubectl("rollout", "status", f"deploy/greenlang-registry-{component}", "-n", NAMESPACE,
                                       f"--timeout={max(1, int(deadline - time.monotonic()))}s", check=False)
        assert rolled.returncode == 0, rolled.stderr
