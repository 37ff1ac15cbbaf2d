package greenlang.status_write_test

import data.greenlang.status_write

old := {"metadata": {"name": "cbam-2.3.1"}, "status": {"state": "draft"}}

write(user, kind, status) := {"user": {"username": user}, "operator": "system:serviceaccount:gl:op", "kind": kind, "oldObject": old, "object": {"metadata": old.metadata, "status": status}}

test_operator_changes_state if count(status_write.deny) == 0 with input as write("system:serviceaccount:gl:op", "AgentVersion", {"state": "experimental"})

test_user_cannot_change_state if {
	status_write.deny == {"status.state of AgentVersion cbam-2.3.1 can only be changed by the registry operator; request a change with a Promotion (rule status_write.operator_only)"} with input as write("mallory", "AgentVersion", {"state": "certified"})
}

test_evaluator_writes_results if {
	count(status_write.deny) == 0 with input as write("ci-bot", "AgentVersion", {"state": "draft", "evaluation": {"passed": true}, "securityScan": {"critical": 0}})
}

test_user_cannot_touch_promotion_status if {
	some msg in status_write.deny with input as write("mallory", "Promotion", {"phase": "Succeeded"})
	contains(msg, "status of Promotion")
}

test_overwriting_a_result_warns if {
	previous := object.union(write("ci-bot", "AgentVersion", {"state": "draft", "evaluation": {"passed": true}}), {"oldObject": {"status": {"state": "draft", "evaluation": {"passed": false}}}})
	some msg in status_write.warn with input as previous
	contains(msg, "status.evaluation of AgentVersion cbam-2.3.1 replaces an earlier result")
}
