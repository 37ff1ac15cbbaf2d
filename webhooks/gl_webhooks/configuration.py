"""The webhook configurations the API server needs to call the registry's admission handlers.

Rendered here (not by kopf) so each webhook gets its deliberate failure policy, timeout and scope:

| webhook | objects | failurePolicy | why |
|---|---|---|---|
| stamp (mutating) | the five kinds, CREATE/UPDATE | Fail | the audit trail and four eyes rely on the stamped identity |
| publish, promotion, approval, deployment | registry kinds | Fail | governance: no decision, no change |
| status-agentversions, status-promotions | status subresource | Fail | only the operator changes lifecycle state |
| images-pods, images-deployments | Pods, Deployments in namespaces labelled environment=production | Fail | no bypass by deploying an image directly |

All use a 5 second timeout (the policy engine answers in milliseconds; a stuck call should not hold
a kubectl for the API server's 30 s maximum) and skip the cluster's system namespaces.
"""

from __future__ import annotations

import base64
from typing import Any

from gl_api import GROUP, labels

NAME = "greenlang-registry"
TIMEOUT_SECONDS = 5
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"]
ENVIRONMENT_LABEL = f"{GROUP}/environment"
TENANT_LABEL = f"{GROUP}/tenant"


def _rule(groups: list[str], resources: list[str], operations: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "apiVersions": ["*"], "operations": operations, "resources": resources,
            "scope": "*"}


def _webhook(name: str, base_url: str, ca_bundle: bytes, rules: list[dict[str, Any]],
             namespace_selector: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": f"{name}.{GROUP}",
        "clientConfig": {"url": f"{base_url.rstrip('/')}/{name}", "caBundle": base64.b64encode(ca_bundle).decode()},
        "rules": rules,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        "namespaceSelector": namespace_selector or {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": SYSTEM_NAMESPACES}]},
    }


def render(base_url: str, ca_bundle: bytes, *, guard_images: bool = True) -> list[dict[str, Any]]:
    """Validating and mutating configurations for a webhook server reachable at ``base_url``."""
    meta = {"name": NAME, "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": NAME,
                                     "app.kubernetes.io/component": "admission-webhook",
                                     labels.MANAGED_BY: labels.OPERATOR_NAME}}
    kinds = ["agents", "agentversions", "promotions", "tenantpolicies", "agentdeployments"]
    validating = [
        _webhook("publish", base_url, ca_bundle, [_rule([GROUP], ["agentversions"], ["CREATE"])]),
        _webhook("promotion", base_url, ca_bundle, [_rule([GROUP], ["promotions"], ["CREATE"])]),
        _webhook("approval", base_url, ca_bundle, [_rule([GROUP], ["promotions"], ["UPDATE"])]),
        _webhook("deployment", base_url, ca_bundle, [_rule([GROUP], ["agentdeployments"], ["CREATE", "UPDATE"])]),
        _webhook("status-agentversions", base_url, ca_bundle, [_rule([GROUP], ["agentversions/status"], ["UPDATE"])]),
        _webhook("status-promotions", base_url, ca_bundle, [_rule([GROUP], ["promotions/status"], ["UPDATE"])]),
    ]
    if guard_images:
        production = {"matchLabels": {ENVIRONMENT_LABEL: "production"}}
        validating += [
            _webhook("images-pods", base_url, ca_bundle, [_rule([""], ["pods"], ["CREATE", "UPDATE"])], production),
            _webhook("images-deployments", base_url, ca_bundle,
                     [_rule(["apps"], ["deployments"], ["CREATE", "UPDATE"])], production),
        ]
    mutating = [{**_webhook("stamp", base_url, ca_bundle, [_rule([GROUP], kinds, ["CREATE", "UPDATE"])]),
                 "reinvocationPolicy": "Never"}]
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": meta, "webhooks": validating},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": meta, "webhooks": mutating},
    ]
