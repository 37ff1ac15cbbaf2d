import pytest

from gl_mirror import audit, request_log


def event(**changes):
    base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a1",
            "stage": "ResponseComplete", "verb": "delete", "requestURI": "/apis/registry.greenlang.ai/v1alpha1/x",
            "user": {"username": "carol", "groups": ["system:authenticated"]}, "sourceIPs": ["10.1.2.3"],
            "objectRef": {"resource": "agents", "namespace": "team", "name": "cbam", "apiGroup": "registry.greenlang.ai",
                          "apiVersion": "v1alpha1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": "2026-11-26T10:00:00.000001Z"}
    return {**base, **changes}


def batch(*items):
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)}


def test_a_delete_is_recorded_with_the_authenticated_user_and_the_deleted_uid():
    (row,) = request_log.records(batch(event(responseObject={"kind": "Agent", "metadata": {"uid": "u-1"}})))
    assert (row.actor, row.operation, row.kind, row.namespace, row.name, row.uid, row.decision, row.reason) == (
        "carol", "delete", "Agent", "team", "cbam", "u-1", "allowed", None)
    assert row.change["sourceIPs"] == ["10.1.2.3"] and row.audit_id == "a1"
    assert row.occurred_at.isoformat() == "2026-11-26T10:00:00.000001+00:00"
    status = {"kind": "Status", "status": "Success", "details": {"name": "cbam", "uid": "u-2"}}
    assert request_log.records(batch(event(responseObject=status)))[0].uid == "u-2"


def test_an_impersonated_request_is_the_impersonated_users_and_names_the_impersonator():
    (row,) = request_log.records(batch(event(impersonatedUser={"username": "alice"})))
    assert (row.actor, row.change["impersonator"], row.change["user"]["username"],
            row.change["impersonatedUser"]["username"]) == ("alice", "carol", "carol", "alice")


@pytest.mark.parametrize("status, annotations, decision", [
    ({"code": 403, "message": 'User "carol" cannot delete'}, {}, "denied"),
    ({"code": 422, "message": "ValidatingAdmissionPolicy 'x' denied request: no"},
     {"validation.policy.admission.k8s.io/validation_failure": "[]"}, "denied"),
    ({"code": 400, "message": 'admission webhook "w" denied the request: no'}, {}, "denied"),
    ({"code": 404, "message": "not found"}, {}, "failed"),
    ({"code": 201}, {}, "allowed"),
])
def test_refusals_are_denials_with_the_api_servers_message(status, annotations, decision):
    (row,) = request_log.records(batch(event(responseStatus=status, annotations=annotations)))
    assert row.decision == decision
    assert row.reason == (None if decision == "allowed" else status["message"])


def test_only_completed_requests_of_the_registrys_groups_are_recorded():
    assert request_log.records(batch(event(stage="RequestReceived"), event(stage="ResponseStarted"),
                                     event(objectRef={"resource": "pods", "apiGroup": ""}))) == []
    assert len(request_log.records(batch(event(stage="Panic", responseStatus={"code": 500})))) == 1
    assert request_log.records(batch(event(objectRef={"resource": "auditevents",
                                                      "apiGroup": "search.registry.greenlang.ai"})))[0].kind \
        == "AuditEvent"


@pytest.mark.parametrize("body, message", [
    ([], "the body must be a JSON object"),
    ({"kind": "Event", "apiVersion": "audit.k8s.io/v1"}, "apiVersion/kind must be audit.k8s.io/v1 EventList"),
    ({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1"}, "--audit-webhook-version=audit.k8s.io/v1"),
    (batch(event(), {**event(), "auditID": ""}), "items[1].auditID is missing"),
    (batch(event(user={"groups": []})), "items[0].user.username is missing"),
    (batch(event(requestReceivedTimestamp="yesterday")), "items[0].requestReceivedTimestamp is not an RFC 3339"),
])
def test_a_malformed_batch_is_refused_naming_the_field(body, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        request_log.records(body)


def test_a_watched_delete_names_no_deleter_and_keeps_the_last_modifier_apart():
    gone = {"metadata": {"name": "cbam", "annotations": {"registry.greenlang.ai/last-modified-by": "alice"}}}
    (row,) = audit.records("Agent", "DELETED", gone, gone)
    assert (row.operation, row.actor, row.change) == ("delete", audit.DELETER_UNKNOWN, {"lastModifiedBy": "alice"})
    # With the API server's audit log, its record of the DELETE is the delete row.
    assert audit.records("Agent", "DELETED", gone, gone, deletes_logged=True) == []
