import json

from regopy import Interpreter

from gl_api import crdgen
from gl_api.lifecycle import TRANSITIONS, State, allowed_targets, check_transition, is_backward, needs_approval
from gl_policy import POLICY_DIR, policy_files


def test_forward_path_is_allowed():
    path = [State.draft, State.experimental, State.certified, State.deprecated, State.retired]
    for current, target in zip(path, path[1:]):
        assert check_transition(current, target) is None


def test_withdraw_and_rollbacks_are_allowed_and_backward():
    for current, target in [(State.experimental, State.draft), (State.certified, State.experimental),
                            (State.deprecated, State.certified)]:
        assert check_transition(current, target) is None
        assert is_backward(current, target)
    assert not is_backward(State.certified, State.deprecated)


def test_every_way_into_certified_needs_an_approval():
    assert needs_approval(State.certified)
    assert not any(needs_approval(s) for s in State if s is not State.certified)


def test_other_moves_are_refused_with_the_allowed_targets():
    message = check_transition(State.draft, State.certified)
    assert message == "cannot move from draft to certified; allowed from draft: experimental"
    assert "none (retired is final)" in check_transition(State.retired, State.certified)
    assert allowed_targets(State.deprecated) == (State.retired, State.certified)


def test_the_committed_rego_table_is_generated_from_this_one():
    assert crdgen.LIFECYCLE_REGO.read_text() == crdgen.render_lifecycle(), \
        "policies/lib/lifecycle.rego is stale: run `make crds` (python -m gl_api.crdgen)"


def test_the_policies_see_exactly_this_table():
    """What the loaded policy set answers, not what a file says: a second `transitions` rule would show here."""
    interpreter = Interpreter()
    for path in policy_files(POLICY_DIR):
        interpreter.add_module(str(path.relative_to(POLICY_DIR)), path.read_text())
    answer = json.loads(str(interpreter.query("x = data.greenlang.lib.transitions")))["bindings"]["x"]
    assert answer == {state.value: [t.value for t in targets] for state, targets in TRANSITIONS.items()}
