# METADATA
# description: |
#   May this status write happen? Only the registry operator changes lifecycle state and the
#   other operator-owned fields; evaluators and metric reporters may only write evaluation,
#   securityScan and usage of an AgentVersion.
#   input: {user, operator: <operator's user name>, kind, object, oldObject}
package greenlang.status_write

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

reporter_fields := {"evaluation", "securityScan", "usage"}

by_operator if input.user.username == input.operator

old_status := object.get(input.oldObject, "status", {})

new_status := object.get(input.object, "status", {})

changed contains field if {
	some field, value in new_status
	object.get(old_status, field, null) != value
}

changed contains field if {
	some field, value in old_status
	object.get(new_status, field, null) != value
}

deny contains msg if {
	not by_operator
	input.kind == "AgentVersion"
	some field in changed
	not field in reporter_fields
	msg := sprintf(
		"status.%s of AgentVersion %s can only be changed by the registry operator; request a change with a Promotion (rule status_write.operator_only)",
		[field, input.object.metadata.name],
	)
}

deny contains msg if {
	not by_operator
	input.kind != "AgentVersion"
	count(changed) > 0
	msg := sprintf(
		"status of %s %s is written only by the registry operator (rule status_write.operator_only)",
		[input.kind, input.object.metadata.name],
	)
}

warn contains msg if {
	not by_operator
	some field in changed
	field in reporter_fields
	object.get(old_status, field, null) != null
	msg := sprintf("status.%s of %s %s replaces an earlier result; the history keeps only the latest", [
		field, input.kind, input.object.metadata.name,
	])
}
