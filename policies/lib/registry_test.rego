package greenlang.lib_test

import data.greenlang.lib

tenant := {"metadata": {"name": "abc"}, "spec": {
	"agents": {"allow": ["sustainability.*"], "deny": ["*-experimental"]},
	"environments": [{"name": "production", "namespace": "abc-prod"}, {"name": "dev", "namespace": "abc-dev", "allowedStates": ["draft"]}],
	"members": [{"kind": "User", "name": "alice", "role": "developer"}, {"kind": "Group", "name": "abc-admins", "role": "tenant_admin"}],
}}

agent(name, domain) := {"metadata": {"name": name}, "spec": {"domain": domain}}

test_allow_matches_domain_glob if lib.allowed_by_tenant(tenant, agent("gl-cbam", "sustainability.cbam"))

test_deny_wins_over_allow if not lib.allowed_by_tenant(tenant, agent("cbam-experimental", "sustainability.cbam"))

test_unlisted_domain_not_allowed if not lib.allowed_by_tenant(tenant, agent("hr-bot", "people.hr"))

test_empty_allow_admits_all if lib.allowed_by_tenant({"spec": {}}, agent("hr-bot", "people.hr"))

test_environment_defaults if {
	lib.allowed_states(lib.environment(tenant, "abc-prod")) == ["certified"]
	lib.allowed_states(lib.environment(tenant, "abc-dev")) == ["draft"]
}

test_roles_from_user_and_group if {
	lib.roles(tenant, {"username": "alice", "groups": []}) == {"developer"}
	lib.roles(tenant, {"username": "bob", "groups": ["abc-admins"]}) == {"tenant_admin"}
}

test_join if lib.join(", ", ["a", "b"]) == "a, b"

# The table itself is generated (lifecycle.rego); this pins the decision it encodes.
test_deprecation_rolls_back_until_retirement if {
	"certified" in lib.transitions.deprecated
	count(lib.transitions.retired) == 0
}
