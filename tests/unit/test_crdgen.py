"""The CRDs in crds/ are generated from the models and must say what every field means."""

import yaml

from gl_api import crdgen, kinds


def test_committed_crds_match_the_models():
    stale = crdgen.stale_files()
    assert not stale, f"regenerate with `python -m gl_api.crdgen`: {stale}"


def _walk(schema, path):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")


def _schema(kind):
    return crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_every_field_has_a_description_for_kubectl_explain():
    missing = []
    for kind in kinds.ALL:
        for path, node in _walk(_schema(kind), kind.kind):
            if path.endswith(".metadata") or path.endswith("[]"):
                continue
            if not node.get("description"):
                missing.append(path)
    assert missing == []


def test_schemas_are_structural():
    for kind in kinds.ALL:
        text = yaml.safe_dump(_schema(kind))
        assert "$ref" not in text and "anyOf" not in text and "title:" not in text
        for path, node in _walk(_schema(kind), kind.kind):
            assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"


def test_names_follow_conventions():
    for kind in kinds.ALL:
        names = crdgen.crd(kind)["spec"]["names"]
        assert names["categories"] == ["greenlang"]
        assert all(short.startswith("gl") for short in names["shortNames"]), names
        assert crdgen.crd(kind)["spec"]["versions"][0]["subresources"] == {"status": {}}
    columns = [c["name"] for c in crdgen.crd(kinds.AGENT_VERSION)["spec"]["versions"][0]["additionalPrinterColumns"]
               if "priority" not in c]
    assert columns == ["Agent", "Version", "State", "Age"]


def test_agentversion_spec_is_immutable_in_the_api_server():
    rules = [v["rule"] for v in _schema(kinds.AGENT_VERSION)["properties"]["spec"]["x-kubernetes-validations"]]
    assert "self == oldSelf" in rules
