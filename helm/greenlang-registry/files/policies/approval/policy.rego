# METADATA
# description: |
#   May these approvals be added to a Promotion? Each must be in the sender's own name, not the
#   requester's, and the sender must hold the RBAC verb `approve` (SubjectAccessReview result).
#   input: {user, requester, added: [approval], subjectAccessReview: {allowed, reason}}
package greenlang.approval

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

deny contains msg if {
	some approval in input.added
	approval.user != input.user.username
	msg := sprintf(
		"approval in the name of %s refused: approvals are given in your own name (%s) (rule approval.own_name)",
		[approval.user, input.user.username],
	)
}

deny contains msg if {
	some approval in input.added
	input.requester != ""
	approval.user == input.requester
	msg := sprintf(
		"approval by %s refused: the requester cannot approve their own Promotion; ask another approver (rule approval.four_eyes)",
		[approval.user],
	)
}

deny contains msg if {
	count(input.added) > 0
	not input.subjectAccessReview.allowed
	msg := sprintf(
		"approval by %s refused: %s lacks the RBAC verb approve on promotions.registry.greenlang.ai (rule approval.verb)",
		[input.user.username, input.user.username],
	)
}

warn contains msg if {
	count(input.added) > 0
	input.requester == ""
	msg := "this Promotion has no recorded requester, so the operator cannot count approvals for it"
}
