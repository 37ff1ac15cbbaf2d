# METADATA
# description: Helpers shared by the registry's decisions.
package greenlang.lib

# transitions (the lifecycle table) is in lifecycle.rego, generated from crds/gl_api/lifecycle.py.

# States an environment admits when its TenantPolicy entry lists none.
default_allowed_states := {
	"dev": ["draft", "experimental", "certified"],
	"staging": ["experimental", "certified"],
	"production": ["certified"],
}

ref(version) := sprintf("%s@%s", [version.spec.agent, version.spec.version])

# concat for use inside sprintf: the embedded interpreter (rego-cpp in regopy 1.5) quotes a
# fresh concat result that is formatted by a multi-argument sprintf; trim_space yields a plain
# string in both engines.
join(separator, items) := trim_space(concat(separator, items))

matches(patterns, agent) if {
	some pattern in patterns
	glob.match(pattern, [], agent.metadata.name)
}

matches(patterns, agent) if {
	some pattern in patterns
	glob.match(pattern, [], agent.spec.domain)
}

denied_by_tenant(tenant, agent) if matches(object.get(tenant, ["spec", "agents", "deny"], []), agent)

allowed_by_tenant(tenant, agent) if {
	not denied_by_tenant(tenant, agent)
	allow := object.get(tenant, ["spec", "agents", "allow"], [])
	count(allow) == 0
}

allowed_by_tenant(tenant, agent) if {
	not denied_by_tenant(tenant, agent)
	matches(object.get(tenant, ["spec", "agents", "allow"], []), agent)
}

environment(tenant, namespace) := env if {
	some env in object.get(tenant, ["spec", "environments"], [])
	env.namespace == namespace
}

allowed_states(env) := env.allowedStates if {
	count(object.get(env, "allowedStates", [])) > 0
} else := default_allowed_states[env.name]

# Tenant roles of a user: direct User members and Group members the user belongs to.
roles(tenant, user) := {member.role |
	some member in object.get(tenant, ["spec", "members"], [])
	is_member(member, user)
}

is_member(member, user) if {
	member.kind == "User"
	member.name == user.username
}

is_member(member, user) if {
	member.kind == "Group"
	member.name in object.get(user, "groups", [])
}
