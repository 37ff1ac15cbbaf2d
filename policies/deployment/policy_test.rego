package greenlang.deployment_test

import data.greenlang.deployment

tenant := {"metadata": {"name": "customer-abc-123"}, "spec": {
	"environments": [
		{"name": "staging", "namespace": "abc-staging"},
		{"name": "production", "namespace": "abc-prod"},
	],
	"agents": {"allow": ["sustainability.*"], "deny": ["gl-blocked-*"]},
	"quotas": {"cpu": "4", "maxDeployments": 2},
	"dataResidency": {"region": "eu-central-1"},
}}

agent := {"metadata": {"name": "gl-cbam-calculator-v2"}, "spec": {"domain": "sustainability.cbam", "dataRegions": ["eu-central-1"]}}

version(state) := {"spec": {"agent": "gl-cbam-calculator-v2", "version": "2.4.0", "runtime": {"resources": {"requests": {"cpu": "500m"}}}}, "status": {"state": state}}

request(namespace, state) := {
	"operation": "CREATE", "user": {"username": "alice"}, "tenant": tenant, "agent": agent,
	"version": version(state), "versionChanged": true, "usage": {"deployments": 0}, "agentTenant": "customer-abc-123",
	"object": {"metadata": {"name": "cbam", "namespace": namespace}, "spec": {"agent": "climate/gl-cbam-calculator-v2", "version": "2.4.0", "replicas": 2}},
}

test_certified_in_production if count(deployment.deny) == 0 with input as request("abc-prod", "certified")

test_experimental_refused_in_production if {
	deployment.deny == {"agent gl-cbam-calculator-v2@2.4.0 is experimental; tenant customer-abc-123 allows only certified versions in production (TenantPolicy customer-abc-123, environments[production].allowedStates)"} with input as request("abc-prod", "experimental")
}

test_experimental_in_staging_warns if {
	count(deployment.deny) == 0 with input as request("abc-staging", "experimental")
	deployment.warn == {"agent gl-cbam-calculator-v2@2.4.0 is experimental: fine for staging, but production admits only certified versions"} with input as request("abc-staging", "experimental")
}

test_blocked_agent if {
	blocked := object.union(request("abc-prod", "certified"), {"agent": {"metadata": {"name": "gl-blocked-scraper"}}})
	deployment.deny == {"agent gl-blocked-scraper (domain sustainability.cbam) is blocked for tenant customer-abc-123 (TenantPolicy customer-abc-123, spec.agents.deny)"} with input as blocked
}

test_not_allowed_domain if {
	other := object.union(request("abc-prod", "certified"), {"agent": {"spec": {"domain": "finance.tax"}}})
	some msg in deployment.deny with input as other
	contains(msg, "is not in tenant customer-abc-123's allow list")
}

test_deployment_quota if {
	full := object.union(request("abc-prod", "certified"), {"usage": {"deployments": 2}})
	some msg in deployment.deny with input as full
	contains(msg, "allows at most 2 AgentDeployments per environment and abc-prod already has 2")
}

test_cpu_quota if {
	big := object.union(request("abc-prod", "certified"), {"object": {"spec": {"replicas": 10}}})
	some msg in deployment.deny with input as big
	contains(msg, "needs up to 5 CPU (10 replicas x 0.5)")
}

test_data_residency if {
	us := object.union(request("abc-prod", "certified"), {"agent": {"spec": {"dataRegions": ["us-east-1"]}}})
	some msg in deployment.deny with input as us
	contains(msg, "requires data residency in eu-central-1")
}

test_not_a_tenant_namespace if {
	some msg in deployment.deny with input as object.union(request("elsewhere", "certified"), {"tenant": null})
	contains(msg, "rule deployment.tenant_environment")
}

test_deprecated_kept_but_warned if {
	kept := object.union(request("abc-prod", "deprecated"), {"operation": "UPDATE", "versionChanged": false})
	count(deployment.deny) == 0 with input as kept
	some msg in deployment.warn with input as kept
	contains(msg, "is deprecated")
}

test_deprecated_not_for_new_rollouts if {
	some msg in deployment.deny with input as request("abc-prod", "deprecated")
	contains(msg, "is deprecated; tenant customer-abc-123 allows only certified versions in production")
}

visible_case(visibility, agent_tenant) := object.union(request("abc-prod", "certified"), {
	"agent": object.union(agent, {"metadata": {"name": "ledger", "namespace": "beta-team"}, "spec": {"visibility": visibility}}),
	"agentTenant": agent_tenant,
})

test_another_tenants_agent_refused_unless_public if {
	some msg in deployment.deny with input as visible_case("tenant", "beta")
	contains(msg, "agent ledger is tenant to tenant beta, which owns namespace beta-team")
	some msg2 in deployment.deny with input as visible_case("private", "beta")
	contains(msg2, "rule deployment.visibility")
	not any_visibility_denial with input as visible_case("public", "beta")
}

test_own_tenants_agent_runs if {
	not any_visibility_denial with input as visible_case("tenant", "customer-abc-123")
}

test_unowned_agent_runs_with_a_warning if {
	not any_visibility_denial with input as visible_case("tenant", null)
	some msg in deployment.warn with input as visible_case("tenant", null)
	contains(msg, "no TenantPolicy owns its namespace beta-team")
}

any_visibility_denial if {
	some msg in deployment.deny
	contains(msg, "rule deployment.visibility")
}
