# METADATA
# description: |
#   May this TenantPolicy claim these namespaces? A tenant's environments become namespaces the
#   operator labels, limits and binds the tenant's members in, so a claim is a grant of access:
#   never a system namespace or the registry's own, never another tenant's, and an existing
#   namespace only when it is already this tenant's or a cluster admin marked it adoptable.
#   input: {tenant: <name>, claims: [namespace], fields: {<namespace>: spec.environments|spec.teamNamespaces},
#           reserved: {names: [..], prefixes: [..]}, namespaces: {<name>: {exists, tenant, adoptable}},
#           claimedBy: {<name>: <other tenant>}}
package greenlang.tenancy

import data.greenlang.lib

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

reserved(ns) if ns in input.reserved.names

reserved(ns) if {
	some prefix in input.reserved.prefixes
	startswith(ns, prefix)
}

found(ns) := object.get(input.namespaces, ns, {"exists": false})

field(ns) := object.get(object.get(input, "fields", {}), ns, "spec.environments")

# Provisioned for this tenant already: a later claim by another TenantPolicy does not take it away.
ours(ns) if found(ns).tenant == input.tenant

deny contains msg if {
	some ns in input.claims
	reserved(ns)
	msg := sprintf(
		"TenantPolicy %s: %s claims namespace %s, which belongs to the cluster or the registry (%s); choose a namespace of the tenant's own (rule tenancy.reserved)",
		[input.tenant, field(ns), ns, lib.join(", ", array.concat(input.reserved.names, [sprintf("%s*", [p]) | some p in input.reserved.prefixes]))],
	)
}

deny contains msg if {
	some ns in input.claims
	not reserved(ns)
	not ours(ns)
	other := input.claimedBy[ns]
	msg := sprintf(
		"TenantPolicy %s: %s claims namespace %s, which TenantPolicy %s already claims; a namespace belongs to one tenant (rule tenancy.claimed)",
		[input.tenant, field(ns), ns, other],
	)
}

deny contains msg if {
	some ns in input.claims
	not reserved(ns)
	not input.claimedBy[ns]
	found(ns).exists
	found(ns).tenant != input.tenant
	not found(ns).adoptable
	msg := sprintf(
		"TenantPolicy %s: %s claims namespace %s, which already exists and was not created for this tenant; pick a new namespace, or have a cluster admin annotate it registry.greenlang.ai/adoptable=true (rule tenancy.existing)",
		[input.tenant, field(ns), ns],
	)
}

warn contains msg if {
	some ns in input.claims
	not reserved(ns)
	not input.claimedBy[ns]
	found(ns).exists
	found(ns).tenant != input.tenant
	found(ns).adoptable
	msg := sprintf(
		"TenantPolicy %s adopts the existing namespace %s: its members get access to everything already in it",
		[input.tenant, ns],
	)
}
