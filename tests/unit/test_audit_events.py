from datetime import datetime, timezone

import pytest

from gl_api import audit_events
from gl_api.lifecycle import TRANSITIONS


def test_every_event_type_is_mapped_and_documented():
    case = audit_events.sql_case()
    for event_type, meaning in audit_events.EVENT_TYPES.items():
        assert f"THEN '{event_type}'" in case and meaning
    assert set(audit_events.EVENT_TYPES) == {
        "agent.published", "agent.promoted", "agent.deprecated", "agent.retired", "agent.rolled_back",
        "agent.approved", "deployment.created", "deployment.rolled_back", "policy.denied", "access.denied"}


def test_every_lifecycle_move_has_exactly_one_type():
    case = audit_events.sql_case()
    for current, targets in TRANSITIONS.items():
        for target in targets:
            pair = f"('{current.value}', '{target.value}')"
            by_pair = [line for line in case.splitlines() if pair in line]
            by_target = [line for line in case.splitlines() if f"change ->> 'to' = '{target.value}'" in line]
            assert len(by_pair) + len(by_target) == 1, (current, target)


def test_the_sql_has_no_placeholder_characters():
    assert "%" not in audit_events.sql_case()  # it is pasted into a parameterised query


def test_an_unknown_type_is_refused_with_the_list():
    assert audit_events.check("agent.promoted") == "agent.promoted"
    with pytest.raises(audit_events.UnknownEventType, match="unknown event type 'promotion'; use one of: "
                                                            "agent.published, agent.promoted, "):
        audit_events.check("promotion")


@pytest.mark.parametrize("text, end, expected", [
    ("2025-11-01", False, datetime(2025, 11, 1, tzinfo=timezone.utc)),
    ("2025-11-01", True, datetime(2025, 11, 2, tzinfo=timezone.utc)),  # through the end of that day
    ("2025-11-01T09:30:00Z", True, datetime(2025, 11, 1, 9, 30, tzinfo=timezone.utc)),
    ("2025-11-01T11:30:00.5+02:00", False, datetime(2025, 11, 1, 9, 30, 0, 500000, tzinfo=timezone.utc)),
])
def test_dates_and_rfc3339_times(text, end, expected):
    assert audit_events.parse_time(text, "--start-time", end) == expected


@pytest.mark.parametrize("text, fragment", [
    ("last week", "not 'last week'"),
    ("2025-11-01T09:30:00", "not '2025-11-01T09:30:00'"),  # no offset: not RFC 3339
    ("2025-02-30", "no such day or time"),
    ("11/01/2025", "not '11/01/2025'"),
])
def test_other_times_are_refused_naming_the_field(text, fragment):
    with pytest.raises(ValueError, match="--start-time must be a date such as 2025-11-01 or an RFC 3339 time") as e:
        audit_events.parse_time(text, "--start-time")
    assert fragment in str(e.value)
