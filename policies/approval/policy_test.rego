package greenlang.approval_test

import data.greenlang.approval

base := {"user": {"username": "bob", "groups": []}, "requester": "alice", "added": [{"user": "bob"}], "subjectAccessReview": {"allowed": true}}

test_permitted_second_person if count(approval.deny) == 0 with input as base

test_requester_cannot_approve if {
	some msg in approval.deny with input as object.union(base, {"user": {"username": "alice"}, "added": [{"user": "alice"}]})
	contains(msg, "rule approval.four_eyes")
}

test_forged_name if {
	some msg in approval.deny with input as object.union(base, {"added": [{"user": "carol"}]})
	contains(msg, "approval in the name of carol refused")
}

test_without_verb if {
	approval.deny == {"approval by bob refused: bob lacks the RBAC verb approve on promotions.registry.greenlang.ai (rule approval.verb)"} with input as object.union(base, {"subjectAccessReview": {"allowed": false}})
}

test_nothing_added_nothing_checked if count(approval.deny) == 0 with input as object.union(base, {"added": [], "subjectAccessReview": {"allowed": false}})
