# METADATA
# description: |
#   May this AgentDeployment run here? The namespace must be a tenant environment, the agent
#   allowed by the tenant's allow/deny lists and visible to it (an agent that is not public runs only
#   in the tenant owning its namespace), the version's state allowed in the environment
#   (production: certified only), the request within quotas and the data residency respected.
#   input: {operation, user, object: AgentDeployment, agent: Agent|null, version: AgentVersion|null,
#           versionChanged: bool, tenant: TenantPolicy|null, usage: {deployments},
#           agentTenant: <name of the TenantPolicy owning the Agent's namespace>|null}
package greenlang.deployment

import data.greenlang.lib

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

deployment := input.object

namespace := deployment.metadata.namespace

env := lib.environment(input.tenant, namespace)

tenant_name := input.tenant.metadata.name

state := object.get(input.version, ["status", "state"], "unknown")

ref := lib.ref(input.version)

deny contains msg if {
	not env
	msg := sprintf(
		"AgentDeployment %s: namespace %s is not an environment of any TenantPolicy; deploy into a tenant environment's namespace (rule deployment.tenant_environment)",
		[deployment.metadata.name, namespace],
	)
}

deny contains msg if {
	input.agent == null
	msg := sprintf("AgentDeployment %s: Agent %s does not exist (rule deployment.agent_exists)", [
		deployment.metadata.name, deployment.spec.agent,
	])
}

visibility := object.get(input.agent, ["spec", "visibility"], "tenant")

agent_tenant := object.get(input, "agentTenant", null)

deny contains msg if {
	env
	input.agent != null
	visibility != "public"
	agent_tenant != null
	agent_tenant != tenant_name
	msg := sprintf(
		"agent %s is %s to tenant %s, which owns namespace %s; tenant %s may not run it (Agent spec.visibility, rule deployment.visibility)",
		[input.agent.metadata.name, visibility, agent_tenant, input.agent.metadata.namespace, tenant_name],
	)
}

warn contains msg if {
	env
	input.agent != null
	visibility != "public"
	agent_tenant == null
	msg := sprintf(
		"agent %s is %s, but no TenantPolicy owns its namespace %s, so nothing limits who runs it; list the namespace in its tenant's spec.teamNamespaces",
		[input.agent.metadata.name, visibility, input.agent.metadata.namespace],
	)
}

deny contains msg if {
	env
	input.agent != null
	lib.denied_by_tenant(input.tenant, input.agent)
	msg := sprintf(
		"agent %s (domain %s) is blocked for tenant %s (TenantPolicy %s, spec.agents.deny)",
		[input.agent.metadata.name, input.agent.spec.domain, tenant_name, tenant_name],
	)
}

deny contains msg if {
	env
	input.agent != null
	not lib.denied_by_tenant(input.tenant, input.agent)
	not lib.allowed_by_tenant(input.tenant, input.agent)
	msg := sprintf(
		"agent %s (domain %s) is not in tenant %s's allow list (TenantPolicy %s, spec.agents.allow)",
		[input.agent.metadata.name, input.agent.spec.domain, tenant_name, tenant_name],
	)
}

deny contains msg if {
	input.agent != null
	input.version == null
	msg := sprintf("AgentDeployment %s: no version of %s matches %s (rule deployment.version_exists)", [
		deployment.metadata.name, deployment.spec.agent, selector,
	])
}

selector := sprintf("version %s", [deployment.spec.version]) if deployment.spec.version

else := sprintf("versionRange %s", [deployment.spec.versionRange]) if deployment.spec.versionRange

else := sprintf("channel %s", [deployment.spec.channel])

# An existing deployment may keep a version that was deprecated since; a new rollout may not.
kept_deprecated if {
	state == "deprecated"
	not input.versionChanged
}

deny contains msg if {
	env
	input.version != null
	allowed := lib.allowed_states(env)
	not state in allowed
	not kept_deprecated
	msg := sprintf(
		"agent %s is %s; tenant %s allows only %s versions in %s (TenantPolicy %s, environments[%s].allowedStates)",
		[ref, state, tenant_name, lib.join(" or ", allowed), env.name, tenant_name, env.name],
	)
}

max_replicas := deployment.spec.replicas if deployment.spec.replicas

else := deployment.spec.autoscaling.maxReplicas if deployment.spec.autoscaling

else := 1

cpu_per_replica := units.parse(deployment.spec.resources.requests.cpu) if deployment.spec.resources.requests.cpu

else := units.parse(input.version.spec.runtime.resources.requests.cpu) if input.version.spec.runtime.resources.requests.cpu

else := 0

deny contains msg if {
	env
	limit := input.tenant.spec.quotas.maxDeployments
	input.operation == "CREATE"
	input.usage.deployments >= limit
	msg := sprintf(
		"tenant %s allows at most %d AgentDeployments per environment and %s already has %d; remove one or raise the quota (TenantPolicy %s, spec.quotas.maxDeployments)",
		[tenant_name, limit, namespace, input.usage.deployments, tenant_name],
	)
}

deny contains msg if {
	env
	quota := units.parse(input.tenant.spec.quotas.cpu)
	needed := max_replicas * cpu_per_replica
	needed > quota
	msg := sprintf(
		"AgentDeployment %s needs up to %v CPU (%d replicas x %v) but tenant %s's quota is %v CPU per environment; lower replicas or resources, or raise the quota (TenantPolicy %s, spec.quotas.cpu)",
		[deployment.metadata.name, needed, max_replicas, cpu_per_replica, tenant_name, quota, tenant_name],
	)
}

deny contains msg if {
	env
	region := input.tenant.spec.dataResidency.region
	regions := object.get(input.agent, ["spec", "dataRegions"], [])
	count(regions) > 0
	not region in regions
	msg := sprintf(
		"agent %s processes data in %s but tenant %s requires data residency in %s (TenantPolicy %s, spec.dataResidency.region)",
		[input.agent.metadata.name, lib.join(", ", regions), tenant_name, region, tenant_name],
	)
}

warn contains msg if {
	env
	state == "experimental"
	env.name != "production"
	msg := sprintf("agent %s is experimental: fine for %s, but production admits only certified versions", [ref, env.name])
}

warn contains msg if {
	state == "deprecated"
	deprecation := object.get(input.version, ["status", "deprecation"], {})
	msg := sprintf("agent %s is deprecated (sunset %s); move to %s@%s", [
		ref, object.get(deprecation, "sunsetAt", "unknown"),
		input.version.spec.agent, object.get(deprecation, "replacement", "a certified version"),
	])
}
