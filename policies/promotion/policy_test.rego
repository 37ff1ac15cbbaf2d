package greenlang.promotion_test

import data.greenlang.promotion

version(state) := {"spec": {"agent": "cbam", "version": "2.3.1"}, "status": {"state": state}}

tenant := {"metadata": {"name": "abc"}, "spec": {"members": [
	{"kind": "User", "name": "olga", "role": "operator"},
	{"kind": "User", "name": "dev", "role": "developer"},
]}}

request(target, extra) := {
	"operation": "CREATE", "user": {"username": "olga", "groups": []}, "tenants": [tenant],
	"version": version("experimental"),
	"object": {"metadata": {"name": "p", "namespace": "ns"}, "spec": object.union({"agentVersion": "cbam@2.3.1", "targetState": target}, extra)},
}

test_valid_promotion if {
	count(promotion.deny) == 0 with input as request("certified", {})
}

test_invalid_transition_lists_allowed if {
	promotion.deny == {"Promotion p: cbam@2.3.1 is experimental and cannot move to retired; allowed from experimental: certified, draft (rule promotion.transition)"} with input as request("retired", {})
}

test_missing_version if {
	some msg in promotion.deny with input as object.union(request("certified", {}), {"version": null})
	contains(msg, "rule promotion.version_exists")
}

test_fast_track_needs_role if {
	req := object.union(request("certified", {"fastTrack": {"justification": "cve", "incident": "INC-1"}}), {"user": {"username": "dev", "groups": []}})
	promotion.deny == {"Promotion p: dev may not fast-track; it needs a tenant role of operator, super_admin, tenant_admin (has: developer) (TenantPolicy members, rule promotion.fast_track_role)"} with input as req
}

test_fast_track_by_operator if {
	count(promotion.deny) == 0 with input as request("certified", {"fastTrack": {"justification": "cve", "incident": "INC-1"}})
}

test_fast_track_needs_justification if {
	some msg in promotion.deny with input as request("certified", {"fastTrack": {"incident": "INC-1"}})
	contains(msg, "spec.fastTrack.justification")
}

test_deprecation_without_sunset_warns if {
	req := object.union(request("deprecated", {"deprecation": {"replacement": "2.4.0"}}), {"version": version("certified")})
	some msg in promotion.warn with input as req
	contains(msg, "retire 90 days after deprecation")
}
