"""The API server can call an admission webhook served on 127.0.0.1, as the registry's webhooks will be."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from e2e import wait
from gl_devenv import certs


class _DenyLabelled(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        labels = request["object"]["metadata"].get("labels", {})
        allowed = labels.get("e2e-deny") != "true"
        response = {"uid": request["uid"], "allowed": allowed}
        if not allowed:
            response["status"] = {"code": 403, "message": f"denied by the test webhook for {request['userInfo']['username']}"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_webhook(tmp_path, api, namespace):
    ca = certs.ensure_ca(tmp_path, "webhook-ca", "e2e-webhook-ca")
    serving = certs.ensure_leaf(tmp_path, "webhook", ca, "127.0.0.1", server=True, ips=("127.0.0.1",))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DenyLabelled)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(serving.cert), str(serving.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"deny-labelled-{namespace}"
    admission = client.AdmissionregistrationV1Api(api)
    admission.create_validating_webhook_configuration({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "deny-labelled.e2e.greenlang.ai",
            "clientConfig": {"url": f"https://127.0.0.1:{server.server_address[1]}/validate",
                             "caBundle": base64.b64encode(ca.cert.read_bytes()).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
        }],
    })
    yield
    admission.delete_validating_webhook_configuration(name)
    server.shutdown()


def _refused_configmap() -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name="refused", labels={"e2e-deny": "true"}))


def test_api_server_calls_a_webhook_on_loopback(api, namespace, loopback_webhook):
    core = client.CoreV1Api(api)

    def webhook_active() -> bool:
        # The API server picks up new webhook configurations asynchronously.
        try:
            core.create_namespaced_config_map(namespace, _refused_configmap(), dry_run="All")
        except ApiException as error:
            return error.status == 403
        return False

    wait.until(webhook_active, timeout=30, what="the webhook configuration to take effect")
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fine")))
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_config_map(namespace, _refused_configmap())
    assert denied.value.status == 403
    assert "denied by the test webhook for admin" in denied.value.body
