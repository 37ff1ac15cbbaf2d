"""The webhook configurations that make the API server call `gl-webhooks` (``gl-webhooks configuration``).

Each webhook has a deliberate scope, and ``matchConditions`` (CEL, evaluated inside the API
server) skip the calls that cannot change a decision:

| webhook | objects | skipped when |
|---|---|---|
| publish | AgentVersion create | never |
| promotion | Promotion create | never |
| approval | Promotion update | spec.approvals did not change (kopf's bookkeeping patches, for one) |
| deployment | AgentDeployment create, update | spec did not change (status, labels, kopf's annotations) |
| status-agentversions, status-promotions | status subresource updates | the operator writes (its policy lets it change anything, so nothing is lost), or status did not change |
| images-pods, images-deployments | Pods (ephemeral containers too), Deployments in namespaces labelled environment=production | an update leaves the images as they were |
| tenancy | TenantPolicy create, update | spec did not change |
| promotion-defaults (mutating) | Promotion create, update | neither a deprecation without sunset nor a new approval needs the server's clock |

Identity (created-by, last-modified-by) is not a webhook: the API server stamps and checks it
itself (crds/admission_identity.yaml), so the operator's bookkeeping patches and everyone's
writes of the five kinds cost no webhook call for it.

All fail closed (``failurePolicy: Fail``) with ``timeoutSeconds: 5``: a decision takes
milliseconds, and a cache miss one GET, so 5 s is ample for a slow moment yet bounds how long
a hung server holds a ``kubectl apply`` (the API server's default would be 10 s). They declare
``sideEffects: NoneOnDryRun``: a real denial posts an Event for the audit trail, a dry run
(``gl agent check``) posts nothing. The mutating webhook is not re-invoked
(``reinvocationPolicy: Never``): it only fills spec fields no other mutation reads or writes.
System namespaces are never sent.

``render`` points the API server at a URL (the local stack); ``render_for_service`` at a
Service, which is what the Helm chart's templates are generated from (``helm/chartgen.py``),
so the rules are written once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from gl_api import GROUP, kinds, labels

NAME = "greenlang-registry"
TIMEOUT_SECONDS = 5
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"]
DEFAULT_OPERATOR_USER = "system:serviceaccount:greenlang-system:greenlang-registry-operator"

_IMAGES = ("object.spec.containers.map(c, c.image)"
           " + (has(object.spec.initContainers) ? object.spec.initContainers.map(c, c.image) : [])"
           " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, c.image) : [])")


def _old(expression: str) -> str:
    return expression.replace("object.", "oldObject.")


def _condition(name: str, expression: str) -> dict[str, str]:
    return {"name": name, "expression": expression}


def _not_operator(operator_user: str) -> dict[str, str]:
    quoted = operator_user.replace("\\", "\\\\").replace("'", "\\'")
    return _condition("not-the-operator", f"request.userInfo.username != '{quoted}'")


def _rule(groups: list[str], resources: list[str], operations: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "apiVersions": ["*"], "operations": operations, "resources": resources,
            "scope": "*"}


ClientConfig = Callable[[str], dict[str, Any]]
"""The ``clientConfig`` of the webhook served at path ``/<name>``."""


def _webhook(name: str, client_config: ClientConfig, rules: list[dict[str, Any]],
             conditions: Sequence[dict[str, str]] = (), namespace_selector: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    webhook = {
        "name": f"{name}.{GROUP}",
        "clientConfig": client_config(name),
        "rules": rules,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "NoneOnDryRun",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        "namespaceSelector": namespace_selector or {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": SYSTEM_NAMESPACES}]},
    }
    if conditions:
        webhook["matchConditions"] = list(conditions)
    return webhook


def render(base_url: str, ca_bundle: bytes, operator_user: str = DEFAULT_OPERATOR_USER, *,
           guard_images: bool = True) -> list[dict[str, Any]]:
    """Validating and mutating configurations for a webhook server reachable at ``base_url``."""
    def client_config(name: str) -> dict[str, Any]:
        return {"url": f"{base_url.rstrip('/')}/{name}", "caBundle": base64.b64encode(ca_bundle).decode()}

    return _configurations(client_config, operator_user, guard_images=guard_images)


def render_for_service(name: str, namespace: str, port: int, ca_bundle: str | None, operator_user: str, *,
                       configuration_name: str = NAME, guard_images: bool = True) -> list[dict[str, Any]]:
    """The same configurations for a webhook server behind the Service ``namespace/name``.

    ``ca_bundle`` is the base64 PEM as it goes into the object (None leaves it to an injector
    such as cert-manager's cainjector); the strings may be template placeholders.
    """
    def client_config(path: str) -> dict[str, Any]:
        service = {"service": {"name": name, "namespace": namespace, "path": f"/{path}", "port": port}}
        return service if ca_bundle is None else {**service, "caBundle": ca_bundle}

    return _configurations(client_config, operator_user, guard_images=guard_images, name=configuration_name)


def _configurations(client_config: ClientConfig, operator_user: str, *, guard_images: bool,
                    name: str = NAME) -> list[dict[str, Any]]:
    meta = {"name": name, "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": NAME,
                                     "app.kubernetes.io/component": "admission-webhook",
                                     labels.MANAGED_BY: labels.OPERATOR_NAME}}
    not_operator = _not_operator(operator_user)
    status_changed = _condition("status-changed", "!has(oldObject.status) || !has(object.status) "
                                                  "|| object.status != oldObject.status")
    approvals_changed = _condition(
        "approvals-changed", "has(object.spec.approvals) "
                             "&& (!has(oldObject.spec.approvals) || object.spec.approvals != oldObject.spec.approvals)")
    validating = [
        _webhook("publish", client_config, [_rule([GROUP], [kinds.AGENT_VERSION.plural], ["CREATE"])]),
        _webhook("promotion", client_config, [_rule([GROUP], [kinds.PROMOTION.plural], ["CREATE"])]),
        _webhook("approval", client_config, [_rule([GROUP], [kinds.PROMOTION.plural], ["UPDATE"])],
                 [approvals_changed]),
        _webhook("deployment", client_config,
                 [_rule([GROUP], [kinds.AGENT_DEPLOYMENT.plural], ["CREATE", "UPDATE"])],
                 [_condition("spec-changed", "request.operation == 'CREATE' || object.spec != oldObject.spec")]),
        _webhook("status-agentversions", client_config,
                 [_rule([GROUP], [f"{kinds.AGENT_VERSION.plural}/status"], ["UPDATE"])], [not_operator, status_changed]),
        _webhook("status-promotions", client_config,
                 [_rule([GROUP], [f"{kinds.PROMOTION.plural}/status"], ["UPDATE"])], [not_operator, status_changed]),
        _webhook("tenancy", client_config, [_rule([GROUP], [kinds.TENANT_POLICY.plural], ["CREATE", "UPDATE"])],
                 [_condition("spec-changed", "request.operation == 'CREATE' || object.spec != oldObject.spec")]),
    ]
    if guard_images:
        production = {"matchLabels": {labels.ENVIRONMENT: "production"}}
        validating += [
            _webhook("images-pods", client_config,
                     [_rule([""], ["pods", "pods/ephemeralcontainers"], ["CREATE", "UPDATE"])],
                     [_condition("images-changed", f"request.operation == 'CREATE' || {_IMAGES} != {_old(_IMAGES)}")],
                     production),
            _webhook("images-deployments", client_config,
                     [_rule(["apps"], ["deployments"], ["CREATE", "UPDATE"])],
                     [_condition("template-changed", "request.operation == 'CREATE' "
                                                     "|| object.spec.template.spec != oldObject.spec.template.spec")],
                     production),
        ]
    mutating = [{**_webhook(
        "promotion-defaults", client_config, [_rule([GROUP], [kinds.PROMOTION.plural], ["CREATE", "UPDATE"])],
        [_condition("needs-the-clock",
                    "(request.operation == 'CREATE' && has(object.spec.deprecation) "
                    "&& !has(object.spec.deprecation.sunsetAt)) "
                    "|| (request.operation == 'UPDATE' && has(object.spec.approvals) "
                    "&& (!has(oldObject.spec.approvals) || object.spec.approvals != oldObject.spec.approvals))")]),
        "reinvocationPolicy": "Never"}]
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": meta, "webhooks": validating},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": meta, "webhooks": mutating},
    ]
