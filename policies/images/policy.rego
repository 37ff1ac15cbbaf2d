# METADATA
# description: |
#   May this Pod or Deployment run in a tenant's production namespace? Only images pinned by a
#   digest that belongs to an AgentVersion allowed there, so deploying an image directly cannot
#   bypass the registry's governance.
#   input: {kind, name, namespace, tenant: TenantPolicy, images: [{image, digest, versions: [{ref, state}]}]}
package greenlang.images

import data.greenlang.lib

# The answer the registry's engines ask for: both sets, in one query.
decision := {"deny": deny, "warn": warn}

env := lib.environment(input.tenant, input.namespace)

allowed := lib.allowed_states(env)

deny contains msg if {
	some image in input.images
	image.digest == null
	msg := sprintf(
		"%s %s: image %s is not pinned by digest; namespace %s runs only images of AgentVersions allowed there (rule images.pinned)",
		[input.kind, input.name, image.image, input.namespace],
	)
}

deny contains msg if {
	some image in input.images
	image.digest != null
	count(image.versions) == 0
	msg := sprintf(
		"%s %s: image %s belongs to no AgentVersion; publish it to the registry and run it with an AgentDeployment (rule images.registered)",
		[input.kind, input.name, image.image],
	)
}

# Written without `every`, which the embedded interpreter (regopy 1.5) evaluates differently.
runs_here(image) if {
	some version in image.versions
	version.state in allowed
}

deny contains msg if {
	some image in input.images
	count(image.versions) > 0
	not runs_here(image)
	msg := sprintf(
		"%s %s: image %s belongs to %s, which is not %s as tenant %s requires in %s (TenantPolicy %s, environments[%s].allowedStates) (rule images.allowed_state)",
		[
			input.kind, input.name, image.image, lib.join(", ", [v | some x in image.versions; v := sprintf("%s (%s)", [x.ref, x.state])]),
			lib.join(" or ", allowed), input.tenant.metadata.name, env.name, input.tenant.metadata.name, env.name,
		],
	)
}

warn contains msg if {
	some image in input.images
	some version in image.versions
	version.state == "deprecated"
	msg := sprintf("%s %s: image %s belongs to deprecated %s", [input.kind, input.name, image.image, version.ref])
}
