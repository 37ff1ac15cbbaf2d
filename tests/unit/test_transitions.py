from datetime import datetime, timedelta, timezone

from gl_api.lifecycle import State
from gl_operator import transitions
from gl_operator.transitions import Transition

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def test_transition_appends_history_and_keeps_other_status():
    status = {"state": "experimental", "stateHistory": [{"to": "draft", "at": "2026-11-01T00:00:00Z"}],
              "evaluation": {"passed": True}}
    patch = transitions.transition_status(status, Transition(State.certified, "alice", "soak done", "p1",
                                                             fast_track="INC-9"), 1, NOW)
    assert patch["state"] == "certified"
    assert patch["stateHistory"][-1] == {"from": "experimental", "to": "certified", "at": "2026-11-26T12:00:00Z",
                                         "by": "alice", "promotion": "p1",
                                         "reason": "soak done [fast track: incident INC-9]"}
    assert "evaluation" not in patch  # merge patch leaves evaluator-owned fields alone


def test_deprecation_records_replacement_and_sunset():
    sunset = transitions.sunset_at(None, timedelta(days=90), NOW)
    patch = transitions.transition_status({"state": "certified"}, Transition(
        State.deprecated, "alice", "superseded", replacement="2.4.0", sunset_at=sunset), 1, NOW)
    assert patch["deprecation"] == {"replacement": "2.4.0", "announcedAt": "2026-11-26T12:00:00Z",
                                    "sunsetAt": "2027-02-24T12:00:00Z"}


def test_already_applied_recognises_this_promotions_entry_only():
    status = {"stateHistory": [{"to": "experimental", "promotion": "p1", "at": "2026-11-26T12:00:00Z"}]}
    assert transitions.already_applied(status, "p1", NOW - timedelta(minutes=1))
    assert not transitions.already_applied(status, "p2", NOW - timedelta(minutes=1))
    # A Promotion recreated later under the same name is a new request.
    assert not transitions.already_applied(status, "p1", NOW + timedelta(minutes=1))
