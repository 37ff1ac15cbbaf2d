"""Lifecycle states of an AgentVersion and the transitions between them.

This table is the one source: the Rego policies read it from ``policies/lib/lifecycle.rego``,
which ``python -m gl_api.crdgen`` generates from it (a unit test fails when the two differ).
"""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    draft = "draft"
    experimental = "experimental"
    certified = "certified"
    deprecated = "deprecated"
    retired = "retired"


# Forward promotions first, then the backward moves: withdrawing an experiment, rolling back a
# certification, and rolling back a deprecation until the version retires (retired is final).
TRANSITIONS: dict[State, tuple[State, ...]] = {
    State.draft: (State.experimental,),
    State.experimental: (State.certified, State.draft),
    State.certified: (State.deprecated, State.experimental),
    State.deprecated: (State.retired, State.certified),
    State.retired: (),
}

# Backward moves need a reason, recorded in the state history.
BACKWARD: frozenset[tuple[State, State]] = frozenset({
    (State.experimental, State.draft), (State.certified, State.experimental), (State.deprecated, State.certified),
})


def allowed_targets(current: State) -> tuple[State, ...]:
    return TRANSITIONS[current]


def is_backward(current: State, target: State) -> bool:
    return (current, target) in BACKWARD


def needs_approval(target: State) -> bool:
    """Four eyes for every way into certified: certification, and the rollback of a deprecation."""
    return target is State.certified


def check_transition(current: State, target: State) -> str | None:
    """None when ``current -> target`` is allowed, else a message listing what is."""
    if target in TRANSITIONS[current]:
        return None
    allowed = ", ".join(s.value for s in TRANSITIONS[current]) or "none (retired is final)"
    return f"cannot move from {current.value} to {target.value}; allowed from {current.value}: {allowed}"
