# METADATA
# description: |
#   May this Pod or Deployment run in a tenant's production namespace? Only images pinned by a
#   digest that belongs to an AgentVersion allowed there, so deploying an image directly cannot
#   bypass the registry's governance. The registry's agent runtime image runs whatever artifact
#   GL_ARTIFACT_DIGEST names, so a container running it is judged by that artifact instead: it
#   must name one literally, the artifact must be an AgentVersion's (spec.artifact.digest) in a
#   state allowed there, and the container may not make it run other code (command, args, workingDir,
#   envFrom, LD_*/PYTHON* variables, mounts but an emptyDir under /tmp and the ServiceAccount token).
#   input: {kind, name, namespace, tenant: TenantPolicy, images: [{image, digest, versions: [{ref, state}],
#   runtime: true|absent, artifact: "sha256:…"|null, overrides: ["command"|"args"|"workingDir"|"envFrom"|"env NAME"|"volumeMounts PATH"]}]}
#   (runtime, artifact and overrides only on runtime images; their versions are the artifact's)
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

runtime(image) if image.runtime == true

deny contains msg if {
	some image in input.images
	image.digest != null
	not runtime(image)
	count(image.versions) == 0
	msg := sprintf(
		"%s %s: image %s belongs to no AgentVersion; publish it to the registry and run it with an AgentDeployment (rule images.registered)",
		[input.kind, input.name, image.image],
	)
}

deny contains msg if {
	some image in input.images
	runtime(image)
	image.artifact == null
	msg := sprintf(
		"%s %s: image %s is the registry's agent runtime, which runs the artifact GL_ARTIFACT_DIGEST names, and the container sets none as a plain value (valueFrom and envFrom cannot be checked); set env GL_ARTIFACT_DIGEST to the spec.artifact.digest of an AgentVersion allowed here, or run the agent with an AgentDeployment (rule images.runtime_artifact)",
		[input.kind, input.name, image.image],
	)
}

deny contains msg if {
	some image in input.images
	runtime(image)
	image.artifact != null
	count(image.versions) == 0
	msg := sprintf(
		"%s %s: image %s runs artifact %s, which belongs to no AgentVersion; publish the artifact to the registry and run it with an AgentDeployment (rule images.registered)",
		[input.kind, input.name, image.image, image.artifact],
	)
}

deny contains msg if {
	some image in input.images
	runtime(image)
	count(object.get(image, "overrides", [])) > 0
	msg := sprintf(
		"%s %s: image %s is the registry's agent runtime and the container changes what it runs (%s); remove that so the runtime serves only the artifact it verified (scratch space: an emptyDir at /tmp), or run the agent with an AgentDeployment (rule images.runtime_entrypoint)",
		[input.kind, input.name, image.image, lib.join(", ", image.overrides)],
	)
}

# Written without `every`, which the embedded interpreter (regopy 1.5) evaluates differently.
runs_here(image) if {
	some version in image.versions
	version.state in allowed
}

deny contains msg if {
	some image in input.images
	not runtime(image)
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

deny contains msg if {
	some image in input.images
	runtime(image)
	count(image.versions) > 0
	not runs_here(image)
	msg := sprintf(
		"%s %s: image %s runs artifact %s of %s, which is not %s as tenant %s requires in %s (TenantPolicy %s, environments[%s].allowedStates) (rule images.allowed_state)",
		[
			input.kind, input.name, image.image, image.artifact, lib.join(", ", [v | some x in image.versions; v := sprintf("%s (%s)", [x.ref, x.state])]),
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
