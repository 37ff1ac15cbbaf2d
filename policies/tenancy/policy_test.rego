package greenlang.tenancy_test

import data.greenlang.tenancy

reserved := {"names": ["default", "greenlang-system"], "prefixes": ["kube-"]}

claim(namespaces, found, claimed_by) := {
	"tenant": "acme",
	"claims": namespaces,
	"reserved": reserved,
	"namespaces": found,
	"claimedBy": claimed_by,
}

test_new_namespaces_allowed if {
	count(tenancy.deny) == 0 with input as claim(["acme-dev", "acme-prod"], {}, {})
	count(tenancy.warn) == 0 with input as claim(["acme-dev", "acme-prod"], {}, {})
}

test_own_existing_namespace_allowed if {
	count(tenancy.deny) == 0 with input as claim(["acme-dev"], {"acme-dev": {"exists": true, "tenant": "acme", "adoptable": false}}, {})
}

test_system_namespaces_refused if {
	denials := tenancy.deny with input as claim(["kube-system", "default", "greenlang-system"], {}, {})
	count(denials) == 3
	some msg in denials
	contains(msg, "claims namespace kube-system, which belongs to the cluster or the registry (default, greenlang-system, kube-*)")
}

test_another_tenants_namespace_refused if {
	tenancy.deny == {"TenantPolicy acme: spec.environments claims namespace beta-prod, which TenantPolicy beta already claims; a namespace belongs to one tenant (rule tenancy.claimed)"} with input as claim(["beta-prod"], {"beta-prod": {"exists": true, "tenant": "beta", "adoptable": true}}, {"beta-prod": "beta"})
}

test_existing_foreign_namespace_refused if {
	some msg in tenancy.deny with input as claim(["payments"], {"payments": {"exists": true, "tenant": null, "adoptable": false}}, {})
	contains(msg, "registry.greenlang.ai/adoptable=true (rule tenancy.existing)")
}

test_left_behind_by_a_deleted_tenant_refused if {
	count(tenancy.deny) == 1 with input as claim(["old-dev"], {"old-dev": {"exists": true, "tenant": "old", "adoptable": false}}, {})
}

test_adoptable_namespace_allowed_with_a_warning if {
	found := {"payments": {"exists": true, "tenant": null, "adoptable": true}}
	count(tenancy.deny) == 0 with input as claim(["payments"], found, {})
	some msg in tenancy.warn with input as claim(["payments"], found, {})
	contains(msg, "adopts the existing namespace payments")
}

test_adoptable_does_not_open_system_namespaces if {
	count(tenancy.deny) == 1 with input as claim(["kube-public"], {"kube-public": {"exists": true, "tenant": null, "adoptable": true}}, {})
}

test_a_later_claim_does_not_take_a_provisioned_namespace if {
	count(tenancy.deny) == 0 with input as claim(["acme-dev"], {"acme-dev": {"exists": true, "tenant": "acme", "adoptable": false}}, {"acme-dev": "intruder"})
}

test_a_team_namespace_is_claimed_like_an_environment if {
	some msg in tenancy.deny with input as object.union(claim(["kube-system"], {}, {}), {"fields": {"kube-system": "spec.teamNamespaces"}})
	startswith(msg, "TenantPolicy acme: spec.teamNamespaces claims namespace kube-system")
}
