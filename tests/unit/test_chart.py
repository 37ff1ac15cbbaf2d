"""The Helm chart carries the project's own sources, rendered by helm/chartgen.py (`make crds`), never hand-copied."""

import importlib.util
import json
import sys
import typing
from pathlib import Path

import yaml

from gl_api import crdgen, kinds
from gl_policy import POLICY_DIR, policy_files
from gl_webhooks import configuration

HELM = Path(__file__).resolve().parents[2] / "helm"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, HELM / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


chart_values = _load("chart_values")
chartgen = _load("chartgen")
CHART = chartgen.CHART


def test_the_chart_has_not_drifted_from_its_sources():
    stale = chartgen.stale_files()
    assert not stale, f"regenerate with `make crds` (python helm/chartgen.py): {[str(p) for p in stale]}"


def test_every_crd_and_every_admission_and_rbac_file_is_in_the_chart():
    templates = {p.name for p in (CHART / "templates").glob("*.yaml")}
    assert {f"crd-{kind.crd_name}.yaml" for kind in kinds.ALL} <= templates
    for path in crdgen.CRD_DIR.glob("admission_*.yaml"):
        assert f"admission-{path.stem.removeprefix('admission_')}.yaml" in templates, path
    for path in crdgen.CRD_DIR.glob("rbac_*.yaml"):
        name = path.stem.removeprefix("rbac_")
        assert (f"{name}-rbac.yaml" if name in chartgen.COMPONENTS else f"rbac-{name}.yaml") in templates, path


def test_crds_are_switchable_and_kept_on_uninstall():
    for kind in kinds.ALL:
        text = (CHART / "templates" / f"crd-{kind.crd_name}.yaml").read_text()
        assert "{{- if .Values.crds.enabled }}" in text
        assert "{{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep" in text
        # Apart from the template lines, the chart's CRD is the generated one.
        plain = "\n".join(line for line in text.splitlines() if "{{" not in line and "helm.sh/resource-policy" not in line
                          and line != "  annotations:" and not line.startswith("#"))
        assert yaml.safe_load(plain) == crdgen.crd(kind)


def test_the_policy_bundle_is_every_policy_but_the_tests_plus_opas_authorization():
    carried = {p.relative_to(CHART / chartgen.POLICIES) for p in (CHART / chartgen.POLICIES).rglob("*.rego")}
    assert carried == {p.relative_to(POLICY_DIR) for p in policy_files(POLICY_DIR)} | {Path("system/authz.rego")}
    assert not any(p.name.endswith("_test.rego") for p in carried)
    for path in policy_files(POLICY_DIR):
        assert (CHART / chartgen.POLICIES / path.relative_to(POLICY_DIR)).read_text() == path.read_text()


def test_the_webhook_templates_hold_the_rules_gl_webhooks_prints():
    by_url = configuration.render("https://127.0.0.1:9443", b"ca", "system:serviceaccount:ns:op")
    by_service = configuration.render_for_service("svc", "ns", 443, "Y2E=", "system:serviceaccount:ns:op")
    for url_object, service_object in zip(by_url, by_service):
        for a, b in zip(url_object["webhooks"], service_object["webhooks"], strict=True):
            assert {**a, "clientConfig": None} == {**b, "clientConfig": None}
            assert b["clientConfig"]["service"]["path"] == "/" + a["name"].split(".")[0]
    text = (CHART / "templates" / "webhooks-validatingwebhookconfiguration.yaml").read_text()
    names = [line.split(": ")[1] for line in text.splitlines() if line.startswith("  - name: ")]
    assert names == [w["name"] for w in by_url[0]["webhooks"]]
    assert "{{- if .Values.webhooks.imageGuard }}\n  - name: images-pods." in text


def _fields(model, indent=""):
    """(indent, key) of every field, in the order values.yaml lists them."""
    for name, field in model.model_fields.items():
        yield indent, field.alias or name
        nested = chartgen._model_of(typing.get_type_hints(model)[name])
        if nested is not None:
            yield from _fields(nested, indent + "  ")


def test_values_yaml_documents_every_key_and_holds_the_models_defaults():
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    assert chart_values.Values.model_validate(values).model_dump(by_alias=True, mode="json") == values
    lines, at = text.splitlines(), 0
    for indent, key in _fields(chart_values.Values):
        at = next(i for i in range(at, len(lines)) if lines[i].startswith(f"{indent}{key}:"))
        assert lines[at - 1].startswith(f"{indent}# "), f"values.yaml: {key} (line {at + 1}) has no description"


def test_the_schema_refuses_unknown_keys_everywhere():
    schema = json.loads((CHART / "values.schema.json").read_text())
    objects = [schema, *schema["$defs"].values()]
    for node in objects:
        if "properties" in node:
            assert node.get("additionalProperties") is False, node.get("title")
    # The operator's settings are its own model's, not a copy.
    assert "PromotionPolicy" in schema["$defs"] and "DeploymentSettings" in schema["$defs"]
