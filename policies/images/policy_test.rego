package greenlang.images_test

import data.greenlang.images

tenant := {"metadata": {"name": "abc"}, "spec": {"environments": [{"name": "production", "namespace": "abc-prod"}]}}

digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

request(images) := {"kind": "Pod", "name": "web", "namespace": "abc-prod", "tenant": tenant, "images": images}

test_certified_image_runs if {
	count(images.deny) == 0 with input as request([{"image": concat("", ["r/cbam@", digest]), "digest": digest, "versions": [{"ref": "cbam@2.3.1", "state": "certified"}]}])
}

test_unpinned_image_refused if {
	some msg in images.deny with input as request([{"image": "nginx:latest", "digest": null, "versions": []}])
	contains(msg, "rule images.pinned")
}

test_unknown_digest_refused if {
	some msg in images.deny with input as request([{"image": concat("", ["evil@", digest]), "digest": digest, "versions": []}])
	contains(msg, "belongs to no AgentVersion")
}

test_experimental_image_refused if {
	images.deny == {"Pod web: image r/cbam belongs to cbam@2.4.0 (experimental), which is not certified as tenant abc requires in production (TenantPolicy abc, environments[production].allowedStates) (rule images.allowed_state)"} with input as request([{"image": "r/cbam", "digest": digest, "versions": [{"ref": "cbam@2.4.0", "state": "experimental"}]}])
}

runtime_digest := "sha256:abababababababababababababababababababababababababababababababab"

artifact := "sha256:2222222222222222222222222222222222222222222222222222222222222222"

runtime_image(artifact_digest, versions) := {
	"image": concat("", ["localhost/greenlang/agent-runtime@", runtime_digest]), "digest": runtime_digest,
	"runtime": true, "artifact": artifact_digest, "overrides": [], "versions": versions,
}

test_runtime_with_certified_artifact_runs if {
	count(images.deny) == 0 with input as request([runtime_image(artifact, [{"ref": "cbam@2.3.1", "state": "certified"}])])
}

test_runtime_without_artifact_refused if {
	some msg in images.deny with input as request([runtime_image(null, [])])
	contains(msg, "set env GL_ARTIFACT_DIGEST")
	contains(msg, "rule images.runtime_artifact")
}

test_runtime_with_unregistered_artifact_refused if {
	images.deny == {concat("", [
		"Pod web: image localhost/greenlang/agent-runtime@", runtime_digest, " runs artifact ", artifact,
		", which belongs to no AgentVersion; publish the artifact to the registry and run it with an AgentDeployment (rule images.registered)",
	])} with input as request([runtime_image(artifact, [])])
}

test_runtime_with_experimental_artifact_refused if {
	some msg in images.deny with input as request([runtime_image(artifact, [{"ref": "cbam@2.4.0", "state": "experimental"}])])
	contains(msg, concat("", ["runs artifact ", artifact, " of cbam@2.4.0 (experimental), which is not certified"]))
	contains(msg, "rule images.allowed_state")
}

test_runtime_with_replaced_command_refused if {
	image := object.union(runtime_image(artifact, [{"ref": "cbam@2.3.1", "state": "certified"}]), {"overrides": ["command", "args"]})
	some msg in images.deny with input as request([image])
	contains(msg, "changes what it runs (command, args)")
	contains(msg, "rule images.runtime_entrypoint")
}

test_runtime_image_is_not_judged_as_an_image if {
	# The runtime image's own digest belongs to no AgentVersion; only its artifact counts.
	not any_image_registered_denial with input as request([runtime_image(artifact, [{"ref": "cbam@2.3.1", "state": "certified"}])])
}

any_image_registered_denial if {
	some msg in images.deny
	contains(msg, "belongs to no AgentVersion")
}
