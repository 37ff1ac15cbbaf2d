from gl_mirror import audit


def obj(history=(), approvals=None, annotations=None, spec=None):
    return {"metadata": {"name": "x", "annotations": annotations or {}},
            "spec": {**(spec or {}), **({"approvals": approvals} if approvals is not None else {})},
            "status": {"state": history[-1]["to"] if history else None, "stateHistory": list(history)}}


H1 = {"to": "draft", "at": "2026-11-26T10:00:00Z", "by": "alice", "reason": "published"}
H2 = {"from": "draft", "to": "experimental", "at": "2026-11-26T11:00:00Z", "by": "alice", "promotion": "p"}


def test_first_sight_records_creation_and_the_history_it_carries():
    records = audit.records("AgentVersion", "ADDED", None,
                            obj([H1, H2], annotations={"registry.greenlang.ai/created-by": "alice"}))
    assert [(r.operation, r.actor, r.decision) for r in records] == [
        ("create", "alice", None), ("state_change", "alice", "draft"), ("state_change", "alice", "experimental")]
    assert records[2].at.isoformat() == "2026-11-26T11:00:00+00:00"


def test_a_state_change_is_recorded_once():
    records = audit.records("AgentVersion", "MODIFIED", obj([H1]), obj([H1, H2]))
    assert [(r.operation, r.change["from"], r.change["to"]) for r in records] == [("state_change", "draft",
                                                                                  "experimental")]
    assert audit.records("AgentVersion", "MODIFIED", obj([H1, H2]), obj([H1, H2])) == []


def test_an_approval_is_not_also_an_update():
    before = obj(approvals=[])
    after = obj(approvals=[{"user": "bob"}], annotations={"registry.greenlang.ai/last-modified-by": "bob"})
    records = audit.records("Promotion", "MODIFIED", before, after)
    assert [(r.operation, r.actor) for r in records] == [("approval", "bob")]


def test_spec_changes_are_updates_with_a_difference():
    records = audit.records("Agent", "MODIFIED", obj(spec={"tags": ["a"]}),
                            obj(spec={"tags": ["a", "b"]}, annotations={"registry.greenlang.ai/last-modified-by": "c"}))
    assert records[0].operation == "update" and records[0].actor == "c"
    assert records[0].change["spec"] == {"before": {"tags": ["a"]}, "after": {"tags": ["a", "b"]}}


AUDIT_LABEL = {"registry.greenlang.ai/audit": "true"}


def test_denial_events_become_audit_rows():
    event = {"reason": "AdmissionDenied", "message": "no", "metadata": {"labels": AUDIT_LABEL, "annotations": {
        "registry.greenlang.ai/actor": "alice"}}, "involvedObject": {"kind": "Promotion", "name": "p"}}
    assert [(r.operation, r.actor, r.decision, r.reason) for r in audit.records("Event", "ADDED", None, event)] == [
        ("admission_denial", "alice", "denied", "no")]


def test_only_events_labelled_by_the_registry_become_audit_rows():
    """The API server admits the label only from the registry's components (crds/admission_events.yaml)."""
    for reason in ("AdmissionDenied", "RolledBack"):
        event = {"reason": reason, "message": "forged", "involvedObject": {"kind": "Promotion", "name": "p"},
                 "metadata": {"annotations": {"registry.greenlang.ai/actor": "alice"}}}
        assert audit.records("Event", "ADDED", None, event) == []


def test_automatic_rollbacks_become_audit_rows_with_the_measured_figures():
    message = "rolled back 2.4.0 to 2.3.1: error rate 4.1% > 0.5%"
    event = {"reason": "RolledBack", "type": "Warning", "message": message, "metadata": {"labels": AUDIT_LABEL},
             "reportingComponent": "greenlang-registry-operator",
             "involvedObject": {"kind": "AgentDeployment", "name": "cbam"}}
    assert [(r.operation, r.actor, r.decision, r.reason) for r in audit.records("Event", "ADDED", None, event)] == [
        ("rollback", "greenlang-registry-operator", "rolled_back", message)]
    assert audit.records("Event", "ADDED", None, {**event, "reason": "StepAdvanced"}) == []
