# METADATA
# description: |
#   May this AgentVersion be published here? Its Agent must exist, its domain must be allowed
#   for the publisher's tenant, and its artifact must be pinned by digest. An image is optional
#   (without one, the registry's agent runtime serves the artifact); when given, the CRD's schema
#   already requires it pinned by digest.
#   input: {operation, user, object: AgentVersion, agent: Agent|null, tenants: [the TenantPolicy owning the namespace, if any]}
package greenlang.publish

import data.greenlang.lib

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

version := input.object

ref := lib.ref(version)

deny contains msg if {
	input.agent == null
	msg := sprintf(
		"%s: Agent %s does not exist in namespace %s; create the Agent first (rule publish.agent_exists)",
		[ref, version.spec.agent, version.metadata.namespace],
	)
}

deny contains msg if {
	input.agent != null
	some tenant in input.tenants
	not lib.allowed_by_tenant(tenant, input.agent)
	msg := sprintf(
		"%s: agent %s (domain %s) is not allowed for tenant %s; ask its admin to allow it (TenantPolicy %s, spec.agents)",
		[ref, input.agent.metadata.name, input.agent.spec.domain, tenant.metadata.name, tenant.metadata.name],
	)
}

deny contains msg if {
	not version.spec.artifact.digest
	msg := sprintf(
		"%s: spec.artifact.digest is missing; publish the artifact pinned by sha256 (gl agent publish --artifact does this) (rule publish.artifact_digest)",
		[ref],
	)
}

warn contains msg if {
	count(object.get(version.spec, "capabilities", [])) == 0
	msg := sprintf("%s declares no capabilities; it will not be found by capability search", [ref])
}

warn contains msg if {
	count(input.tenants) == 0
	msg := sprintf("%s: no TenantPolicy owns namespace %s (spec.environments or spec.teamNamespaces), so no domain rules apply", [
		ref, version.metadata.namespace,
	])
}
