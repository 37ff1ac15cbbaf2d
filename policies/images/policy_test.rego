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
