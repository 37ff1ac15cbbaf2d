"""The shipped examples are valid against the resource models."""

from pathlib import Path

import pytest
import yaml

from gl_api import kinds

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_matches_models(path):
    for doc in yaml.safe_load_all(path.read_text()):
        assert doc["apiVersion"] == "registry.greenlang.ai/v1alpha1"
        kinds.BY_KIND[doc["kind"]].spec.model_validate(doc["spec"])


def test_examples_cover_every_kind():
    seen = {doc["kind"] for path in EXAMPLES for doc in yaml.safe_load_all(path.read_text())}
    assert seen == {kind.kind for kind in kinds.ALL}
