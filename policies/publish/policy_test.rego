package greenlang.publish_test

import data.greenlang.publish

digest := "sha256:0000000000000000000000000000000000000000000000000000000000000000"

version := {"metadata": {"name": "cbam-2.3.1", "namespace": "climate"}, "spec": {
	"agent": "cbam", "version": "2.3.1",
	"artifact": {"uri": "s3://b/k", "digest": digest},
	"image": concat("", ["r.example.com/cbam@", digest]),
	"capabilities": [{"name": "calc"}],
}}

agent := {"metadata": {"name": "cbam"}, "spec": {"domain": "sustainability.cbam"}}

tenant := {"metadata": {"name": "abc"}, "spec": {"agents": {"allow": ["sustainability.*"]}}}

base := {"operation": "CREATE", "user": {"username": "alice"}, "object": version, "agent": agent, "tenants": [tenant]}

test_well_formed_version_is_allowed if {
	count(publish.deny) == 0 with input as base
	count(publish.warn) == 0 with input as base
}

test_missing_agent if {
	publish.deny == {"cbam@2.3.1: Agent cbam does not exist in namespace climate; create the Agent first (rule publish.agent_exists)"} with input as object.union(base, {"agent": null})
}

test_domain_not_allowed if {
	some msg in publish.deny with input as object.union(base, {"agent": {"metadata": {"name": "cbam"}, "spec": {"domain": "finance.tax"}}})
	contains(msg, "agent cbam (domain finance.tax) is not allowed for tenant abc")
}

test_artifact_digest_required if {
	bare := object.union(object.remove(base, ["object"]), {"object": {"metadata": version.metadata, "spec": {"agent": "cbam", "version": "2.3.1"}}})
	msgs := publish.deny with input as bare
	count(msgs) == 1
	some a in msgs
	contains(a, "rule publish.artifact_digest")
}

test_an_artifact_without_an_image_runs_on_the_agent_runtime if {
	without_image := object.union(object.remove(base, ["object"]), {"object": {"metadata": version.metadata, "spec": object.remove(version.spec, ["image"])}})
	count(publish.deny) == 0 with input as without_image
}

test_warns_without_tenant if {
	some msg in publish.warn with input as object.union(base, {"tenants": []})
	contains(msg, "no TenantPolicy owns namespace climate")
}
