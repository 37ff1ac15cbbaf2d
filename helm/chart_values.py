"""The values of the Helm chart `helm/greenlang-registry`, defined once: `chartgen` writes both
``values.yaml`` (every key with its description as a comment) and ``values.schema.json`` from these
models, so a key cannot be documented and validated differently. Unknown keys are refused
(``extra="forbid"`` becomes ``additionalProperties: false``), so a typo fails `helm install`.

The operator's settings are the operator's own model (``gl_operator.config``), not a copy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gl_operator import config as operator_config

FreeForm = dict[str, Any]


class _Values(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Image(_Values):
    repository: str = Field("", description="Image repository; empty: the top-level image.repository.")
    tag: str = Field("", description="Image tag; empty: the top-level image.tag (else the chart's appVersion).")
    digest: str = Field("", pattern=r"^(sha256:[0-9a-f]{64})?$",
                        description="Image digest (sha256:...); when set it pins the image and the tag is ignored.")


class RegistryImage(Image):
    repository: str = Field("ghcr.io/greenlang/greenlang-registry", description=(
        "The registry's image: one image whose entry points are gl-operator, gl-webhooks and gl-mirror."))
    tag: str = Field("", description="Image tag; empty: the chart's appVersion.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="imagePullPolicy.")


class ServiceAccount(_Values):
    annotations: dict[str, str] = Field(default_factory=dict, description=(
        "Annotations of the component's ServiceAccount, e.g. eks.amazonaws.com/role-arn for IRSA-style S3 access."))


class Pod(_Values):
    """What every component's pods share: scheduling, resources, extra annotations."""

    resources: FreeForm = Field(default_factory=lambda: {"requests": {"cpu": "50m", "memory": "128Mi"},
                                                         "limits": {"memory": "512Mi"}},
                                description="Container resources (requests and limits).")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[FreeForm] = Field(default_factory=list, description="Pod tolerations.")
    affinity: FreeForm = Field(default_factory=dict, description="Pod affinity; empty: replicas spread over nodes "
                                                                 "(preferred podAntiAffinity).")
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Extra annotations of the pods.")
    image: Image = Field(default_factory=Image, description="This component's image, overriding the top-level one.")
    service_account: ServiceAccount = Field(default_factory=ServiceAccount, description="Its ServiceAccount.")
    log_format: Literal["json", "plain"] = Field("json", description="Log format.")
    verbose: bool = Field(False, description="Debug logging.")


class OperatorSettings(operator_config.OperatorConfig):
    service_account: str | None = Field(None, description=(
        "The operator's identity recorded in state history; empty: the chart's ServiceAccount "
        "(system:serviceaccount:<namespace>:<fullname>-operator), the identity the admission policies trust."))


class Operator(Pod):
    replicas: int = Field(2, ge=1, description="Replicas; they elect a leader on the Lease greenlang-registry-operator "
                                               "and a standby takes over within about 10 seconds.")
    watch_namespaces: list[str] = Field(default_factory=list, description="Namespaces to watch; empty: all.")
    resources: FreeForm = Field(default_factory=lambda: {"requests": {"cpu": "50m", "memory": "128Mi"},
                                                         "limits": {"memory": "512Mi"}},
                                description=(
        "Container resources (requests and limits). The operator needs about 100 MB plus 85 KB per "
        "AgentVersion at the peak of a burst of creates (python -m bench memory 10k: 923 MB; "
        "docs/benchmarks.md): the 512Mi limit holds about 5,000 versions; raise it beyond."))
    runtime_image: str = Field("", description="Image for agent versions without spec.image (--runtime-image); "
                                               "empty: config.deployments.runtimeImage.")
    prometheus_url: str = Field("", description="Prometheus HTTP API for SLO analysis (--prometheus-url); "
                                                "empty: config.deployments.prometheusUrl, else analysis is off.")
    config: OperatorSettings = Field(default_factory=OperatorSettings, description=(
        "The operator's settings (gl_operator.config, its --config file): promotion thresholds, deployments."))


class Opa(_Values):
    image: Image = Field(default_factory=lambda: Image(repository="openpolicyagent/opa", tag="1.22.3-static"),
                         description="The OPA image (a version that reads Rego v1).")
    resources: FreeForm = Field(default_factory=lambda: {"requests": {"cpu": "20m", "memory": "64Mi"},
                                                         "limits": {"memory": "256Mi"}},
                                description="The OPA sidecar's resources.")


class Webhooks(Pod):
    replicas: int = Field(2, ge=1, description="Replicas; each answers from its own watch-backed caches.")
    image_guard: bool = Field(True, description=(
        "Register the image guard: Pods and Deployments in namespaces labelled environment=production run only "
        "allowed AgentVersions' images."))
    runtime_images: list[str] = Field(default_factory=list, description=(
        "The registry's agent-runtime images, each pinned by digest (repo@sha256:...); their pods are admitted "
        "in production by the artifact they load (--runtime-image)."))
    opa: Opa = Field(default_factory=Opa, description=(
        "The OPA sidecar serving the policies (a bundle from the chart's ConfigMap) on 127.0.0.1:8181; it answers "
        "only the holder of a token the chart generates."))


class Audit(_Values):
    enabled: bool = Field(False, description=(
        "Receive the API server's audit webhook on port 9443 (mutual TLS), so DELETE records name who deleted. "
        "The API server must be started with --audit-webhook-config-file pointing at the Service (docs/install.md)."))
    client_ca_secret: str = Field("", description=(
        "Secret (key ca.crt) with the CA of the API server's audit client certificate; required when enabled."))
    allowed_names: list[str] = Field(default_factory=lambda: ["kube-apiserver-audit"],
                                     description="Common names of the client certificates allowed to send.")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description=(
        "Type of the audit Service: the API server must reach it, often from outside the pod network."))
    spool_size: str = Field("1Gi", description="Size of the PersistentVolumeClaim where batches wait for Postgres.")
    spool_storage_class: str = Field("", description="StorageClass of the spool; empty: the cluster's default.")


class Mirror(Pod):
    replicas: int = Field(1, ge=1, description="Replicas of the mirror and its query API.")
    prometheus_url: str = Field("", description="Prometheus asked for usage summaries on callers' behalf "
                                                "(--prometheus-url); empty: only recorded usage is served.")
    anchor_interval: float = Field(60, gt=0, le=60, description="Seconds between anchors of the audit chain's head "
                                                                "(--anchor-interval, at most 60).")
    audit: Audit = Field(default_factory=Audit, description="The API server's audit log (--audit-*).")


class ApiService(_Values):
    enabled: bool = Field(True, description=(
        "Register the mirror's query API as v1alpha1.search.registry.greenlang.ai (kubectl get --raw /apis/search...). "
        "While registered and unanswered, namespace deletion stalls."))
    group_priority_minimum: int = Field(1000, ge=1, le=20000, description="APIService groupPriorityMinimum.")
    version_priority: int = Field(15, ge=1, le=1000, description="APIService versionPriority.")


class Crds(_Values):
    enabled: bool = Field(True, description="Install the CRDs from templates/, so that helm upgrade updates them.")
    keep: bool = Field(True, description="Keep the CRDs (and so every registry object) on helm uninstall "
                                         "(helm.sh/resource-policy: keep).")


class Roles(_Values):
    enabled: bool = Field(True, description=(
        "Install the tenant roles and registry roles (crds/rbac_*.yaml: super_admin ... viewer, platform-admin, "
        "approver, evaluator, search and audit readers) and bind each component's least-privilege ClusterRole."))


class AdmissionPolicies(_Values):
    enabled: bool = Field(True, description=(
        "Install the API server's own admission policies (crds/admission_*.yaml) and the ConfigMap "
        "greenlang-registry-identities naming the operator and webhook ServiceAccounts they trust."))


class IssuerRef(_Values):
    name: str = Field("", description="An existing issuer; empty: the chart makes a self-signed CA Issuer.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field("Issuer", description="Issuer or ClusterIssuer.")
    group: str = Field("cert-manager.io", description="The issuer's API group.")


class CertManager(_Values):
    enabled: bool = Field(False, description=(
        "Serving certificates from cert-manager (Certificates, and cert-manager.io/inject-ca-from on the webhook "
        "configurations and the APIService) instead of the chart's own. Use this under Argo CD: the chart's own "
        "certificates are made when it renders."))
    issuer_ref: IssuerRef = Field(default_factory=IssuerRef, description="The issuer of the serving certificates.")
    duration: str = Field("2160h", description="Certificate lifetime.")
    renew_before: str = Field("360h", description="Renew this long before expiry.")


class SelfSigned(_Values):
    ca_validity_days: int = Field(3650, ge=1, description=(
        "Lifetime of the chart's CA; it is kept across upgrades (looked up in its Secret) so caBundles do not change."))
    validity_days: int = Field(365, ge=1, description=(
        "Lifetime of the serving certificates, re-issued from the CA at every install and upgrade."))


class Certificates(_Values):
    self_signed: SelfSigned = Field(default_factory=SelfSigned, description="The chart's own CA (certManager off).")


class DsnSecret(_Values):
    name: str = Field("", description="Secret holding the Postgres DSN (postgresql://user:password@host:5432/db).")
    key: str = Field("dsn", description="Key of the DSN in that Secret.")


class Bundled(_Values):
    enabled: bool = Field(True, description=(
        "Run a single-instance Postgres StatefulSet when dsnSecret.name is empty: for trying the registry out, "
        "not for production."))
    image: Image = Field(default_factory=lambda: Image(repository="postgres", tag="17-alpine"),
                         description="The Postgres image.")
    database: str = Field("greenlang", description="Database name.")
    user: str = Field("registry", description="Database user; its password is generated into a Secret.")
    storage_size: str = Field("8Gi", description="Size of the data volume.")
    storage_class: str = Field("", description="StorageClass of the data volume; empty: the cluster's default.")
    resources: FreeForm = Field(default_factory=lambda: {"requests": {"cpu": "100m", "memory": "256Mi"},
                                                         "limits": {"memory": "1Gi"}},
                                description="Postgres resources.")


class Postgres(_Values):
    dsn_secret: DsnSecret = Field(default_factory=DsnSecret, description="An external Postgres (production).")
    bundled: Bundled = Field(default_factory=Bundled, description="A bundled Postgres (trying it out).")


class S3(_Values):
    endpoint: str = Field("", description="S3-compatible endpoint URL; empty: AWS S3.")
    bucket: str = Field("greenlang-agents", description="Bucket holding agent artifacts.")
    region: str = Field("us-east-1", description="Region.")
    credentials_secret: str = Field("", description=(
        "Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; empty: the ServiceAccount's identity "
        "(operator.serviceAccount.annotations, IRSA-style)."))


class NetworkPolicy(_Values):
    enabled: bool = Field(True, description=(
        "NetworkPolicies for the registry's own pods: ingress only on their serving, probe and metrics ports."))
    metrics_namespace_selector: FreeForm = Field(
        default_factory=lambda: {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        description="Namespaces allowed to scrape metrics.")


class PodDisruptionBudget(_Values):
    enabled: bool = Field(True, description="PodDisruptionBudgets keeping one operator and one webhook replica up.")


class ServiceMonitor(_Values):
    enabled: bool = Field(False, description="A Prometheus Operator ServiceMonitor per component.")
    interval: str = Field("30s", description="Scrape interval.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels (e.g. release: prometheus).")


class PrometheusRule(_Values):
    enabled: bool = Field(False, description=(
        "A Prometheus Operator PrometheusRule: the registry's SLOs as multiwindow burn-rate alerts (get p95 < 50 ms, "
        "search p95 < 200 ms, publish p95 < 2 s, from the API server's request durations), admission errors, failed "
        "Promotions, mirror lag and Postgres, and the audit anchor."))
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels (e.g. release: prometheus).")


class Dashboards(_Values):
    enabled: bool = Field(False, description=(
        "Grafana dashboards (registry, runtime, tenant, SLO) as ConfigMaps, for Grafana's dashboard sidecar."))
    labels: dict[str, str] = Field(default_factory=lambda: {"grafana_dashboard": "1"},
                                   description="Labels the sidecar selects ConfigMaps by.")


class Monitoring(_Values):
    service_monitor: ServiceMonitor = Field(default_factory=ServiceMonitor, description="Scraping.")
    prometheus_rule: PrometheusRule = Field(default_factory=PrometheusRule, description="Alerts.")
    dashboards: Dashboards = Field(default_factory=Dashboards, description="Dashboards.")


class ApiPriorityAndFairness(_Values):
    enabled: bool = Field(False, description=(
        "API Priority and Fairness for the registry's API groups: tenants' requests get a priority level of their "
        "own (so they cannot starve the cluster) and are queued fairly by namespace or user (so one tenant cannot "
        "starve another); the registry's own components keep workload-high."))
    matching_precedence: int = Field(1000, ge=2, le=9999, description=(
        "matchingPrecedence of the tenants' FlowSchema; the built-in service-accounts (9000) and global-default "
        "(9900) come after it."))
    distinguisher: Literal["ByNamespace", "ByUser"] = Field("ByNamespace", description=(
        "What a fair share is per: a namespace (a tenant's environments) or a user."))
    nominal_concurrency_shares: int = Field(10, ge=1, description="The tenants' share of the API server's seats.")
    lendable_percent: int = Field(50, ge=0, le=100, description="Seats other levels may borrow while idle.")
    queues: int = Field(64, ge=1, description="Queues (shuffle sharding).")
    hand_size: int = Field(6, ge=1, description="Queues dealt to each flow.")
    queue_length_limit: int = Field(50, ge=1, description="Requests waiting per queue before 429.")


class HealthChecks(_Values):
    enabled: bool = Field(False, description=(
        "Render the Argo CD health checks of the five kinds (argocd/resource_customizations) into the ConfigMap "
        "<fullname>-argocd-health, keyed as Argo CD's argocd-cm wants them; merge them into argocd-cm with a "
        "merge patch (docs/gitops.md)."))


class ArgoCd(_Values):
    health_checks: HealthChecks = Field(default_factory=HealthChecks, description="Argo CD health checks.")


class Values(_Values):
    name_override: str = Field("", description="Replaces the chart name in resource names.")
    fullname_override: str = Field("", description="Replaces <release>-<chart> in resource names.")
    image: RegistryImage = Field(default_factory=RegistryImage, description="The registry's image.")
    image_pull_secrets: list[FreeForm] = Field(default_factory=list, description="imagePullSecrets of every pod.")
    crds: Crds = Field(default_factory=Crds, description="The five CustomResourceDefinitions.")
    admission_policies: AdmissionPolicies = Field(default_factory=AdmissionPolicies,
                                                  description="Admission the API server enforces itself.")
    roles: Roles = Field(default_factory=Roles, description="ClusterRoles and their bindings.")
    operator: Operator = Field(default_factory=Operator, description="gl-operator: lifecycle and tenants.")
    webhooks: Webhooks = Field(default_factory=Webhooks, description="gl-webhooks and its OPA sidecar.")
    mirror: Mirror = Field(default_factory=Mirror, description="gl-mirror: Postgres mirror, search, audit.")
    api_service: ApiService = Field(default_factory=ApiService, description="The aggregated query API.")
    cert_manager: CertManager = Field(default_factory=CertManager, description="cert-manager integration.")
    certificates: Certificates = Field(default_factory=Certificates, description="The chart's own certificates.")
    postgres: Postgres = Field(default_factory=Postgres, description=(
        "The mirror's database: an external one (dsnSecret.name), else the bundled one."))
    s3: S3 = Field(default_factory=S3, description="The artifact store agents' artifacts are fetched from.")
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy, description="NetworkPolicies.")
    pod_disruption_budget: PodDisruptionBudget = Field(default_factory=PodDisruptionBudget,
                                                       description="PodDisruptionBudgets.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Prometheus Operator resources.")
    api_priority_and_fairness: ApiPriorityAndFairness = Field(default_factory=ApiPriorityAndFairness,
                                                               description="FlowSchemas for registry traffic.")
    argocd: ArgoCd = Field(default_factory=ArgoCd, description="Argo CD integration.")
