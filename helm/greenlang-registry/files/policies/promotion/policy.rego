# METADATA
# description: |
#   May this Promotion be created? The transition must be valid from the version's current
#   state, and a fast track needs a justification, an incident and a tenant role that allows it.
#   input: {operation, user, object: Promotion, version: AgentVersion|null, tenants: [the TenantPolicy owning the namespace, if any]}
package greenlang.promotion

import data.greenlang.lib

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

promotion := input.object

fast_track_roles := {"tenant_admin", "operator", "super_admin"}

deny contains msg if {
	input.version == null
	msg := sprintf(
		"Promotion %s: AgentVersion %s does not exist in namespace %s; publish it first (rule promotion.version_exists)",
		[promotion.metadata.name, promotion.spec.agentVersion, promotion.metadata.namespace],
	)
}

deny contains msg if {
	current := object.get(input.version, ["status", "state"], "draft")
	not promotion.spec.targetState in lib.transitions[current]
	msg := sprintf(
		"Promotion %s: %s is %s and cannot move to %s; allowed from %s: %s (rule promotion.transition)",
		[
			promotion.metadata.name, promotion.spec.agentVersion, current, promotion.spec.targetState,
			current, lib.join(", ", lib.transitions[current]),
		],
	)
}

deny contains msg if {
	promotion.spec.fastTrack
	not promotion.spec.fastTrack.justification
	msg := sprintf("Promotion %s: a fast track needs spec.fastTrack.justification (rule promotion.fast_track)", [promotion.metadata.name])
}

deny contains msg if {
	promotion.spec.fastTrack
	not promotion.spec.fastTrack.incident
	msg := sprintf("Promotion %s: a fast track needs spec.fastTrack.incident (rule promotion.fast_track)", [promotion.metadata.name])
}

requester_roles contains role if {
	some tenant in input.tenants
	some role in lib.roles(tenant, input.user)
}

deny contains msg if {
	promotion.spec.fastTrack
	count(requester_roles & fast_track_roles) == 0
	msg := sprintf(
		"Promotion %s: %s may not fast-track; it needs a tenant role of %s (has: %s) (TenantPolicy members, rule promotion.fast_track_role)",
		[
			promotion.metadata.name, input.user.username, lib.join(", ", sort(fast_track_roles)),
			lib.join(", ", sort(requester_roles)),
		],
	)
}

warn contains msg if {
	promotion.spec.targetState == "deprecated"
	not promotion.spec.deprecation.sunsetAt
	msg := sprintf("Promotion %s: no sunsetAt given; %s will retire 90 days after deprecation", [
		promotion.metadata.name, promotion.spec.agentVersion,
	])
}
