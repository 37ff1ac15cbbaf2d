"""Publish the operator's promotion thresholds, so a dry run judges with the numbers the operator uses.

`gl agent promotion-status X@V` without a Promotion runs the operator's own checks
(``gl_api.promotion_checks``) on the version; the thresholds (minimum score, requests, soak...)
are this operator's settings, so it writes them at start-up into the ConfigMap
``greenlang-system/greenlang-registry-promotion-policy``, which every authenticated user may read
(crds/rbac_registry-roles.yaml). Only what changed is written: a restart with the same settings
changes nothing.
"""

from __future__ import annotations

import json
import logging

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api.promotion_checks import POLICY_CONFIGMAP, POLICY_KEY, PromotionPolicy

log = logging.getLogger(__name__)
NAMESPACE = "greenlang-system"


def published_form(policy: PromotionPolicy) -> str:
    return json.dumps(policy.model_dump(by_alias=True), sort_keys=True)


def publish(api: client.ApiClient, policy: PromotionPolicy, namespace: str = NAMESPACE) -> None:
    core = client.CoreV1Api(api)
    data = {POLICY_KEY: published_form(policy)}
    try:
        current = core.read_namespaced_config_map(POLICY_CONFIGMAP, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=POLICY_CONFIGMAP, namespace=namespace, labels={
                "app.kubernetes.io/name": "greenlang-registry", "app.kubernetes.io/part-of": "greenlang-registry",
                "app.kubernetes.io/component": "promotion-policy"}), data=data))
        log.info("published the promotion policy in %s/%s", namespace, POLICY_CONFIGMAP)
        return
    if (current.data or {}) != data:
        core.patch_namespaced_config_map(POLICY_CONFIGMAP, namespace, {"data": data})
        log.info("updated the promotion policy in %s/%s", namespace, POLICY_CONFIGMAP)
