from gl_api.lifecycle import State, allowed_targets, check_transition


def test_forward_path_is_allowed():
    path = [State.draft, State.experimental, State.certified, State.deprecated, State.retired]
    for current, target in zip(path, path[1:]):
        assert check_transition(current, target) is None


def test_withdraw_and_rollback_are_allowed():
    assert check_transition(State.experimental, State.draft) is None
    assert check_transition(State.certified, State.experimental) is None


def test_other_moves_are_refused_with_the_allowed_targets():
    message = check_transition(State.draft, State.certified)
    assert message == "cannot move from draft to certified; allowed from draft: experimental"
    assert "none (retired is final)" in check_transition(State.retired, State.draft)
    assert allowed_targets(State.deprecated) == (State.retired,)
