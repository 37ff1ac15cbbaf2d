"""Lifecycle states of an AgentVersion and the transitions between them."""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    draft = "draft"
    experimental = "experimental"
    certified = "certified"
    deprecated = "deprecated"
    retired = "retired"


# Forward promotions, the withdrawal of an experiment, and rollback of a certification.
TRANSITIONS: dict[State, tuple[State, ...]] = {
    State.draft: (State.experimental,),
    State.experimental: (State.certified, State.draft),
    State.certified: (State.deprecated, State.experimental),
    State.deprecated: (State.retired,),
    State.retired: (),
}


def allowed_targets(current: State) -> tuple[State, ...]:
    return TRANSITIONS[current]


def check_transition(current: State, target: State) -> str | None:
    """None when ``current -> target`` is allowed, else a message listing what is."""
    if target in TRANSITIONS[current]:
        return None
    allowed = ", ".join(s.value for s in TRANSITIONS[current]) or "none (retired is final)"
    return f"cannot move from {current.value} to {target.value}; allowed from {current.value}: {allowed}"
