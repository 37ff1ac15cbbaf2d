"""The components' roles (crds/rbac_<component>.yaml) are least privilege on paper, and docs/rbac.md says so truly.

The table in docs/rbac.md is rendered from the files, rule by rule, with each rule's comment as its
reason; when a rule changes, this test fails and prints the table to paste.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gl_api import crdgen

COMPONENTS = ("operator", "webhooks", "mirror")
DOC = Path(__file__).resolve().parents[2] / "docs" / "rbac.md"
BEGIN, END = "<!-- rbac table: begin -->", "<!-- rbac table: end -->"


def _documents(component: str) -> list[tuple[dict, list[str]]]:
    """Each role of the file, with the comment above each of its rules (a rule without one shares the
    comment of the rule before it)."""
    result = []
    for text in (crdgen.CRD_DIR / f"rbac_{component}.yaml").read_text().split("\n---\n"):
        role = yaml.safe_load(text)
        reasons: list[str] = []
        pending: list[str] = []
        for line in text.splitlines():
            stripped = line.strip()
            if line.startswith("  ") and stripped.startswith("#"):
                pending.append(stripped.lstrip("# "))
            elif stripped.startswith("- apiGroups:"):
                reasons.append(" ".join(pending) if pending else (reasons[-1] if reasons else ""))
                pending = []
        result.append((role, reasons))
    return result


def render() -> str:
    rows = ["| Component | Role | Scope | API group | Resources | Verbs | Why |", "|---|---|---|---|---|---|---|"]
    for component in COMPONENTS:
        for role, reasons in _documents(component):
            scope = "cluster" if role["kind"] == "ClusterRole" else f"namespace `{role['metadata']['namespace']}`"
            for rule, reason in zip(role["rules"], reasons, strict=True):
                resources = ", ".join(f"`{r}`" for r in rule["resources"])
                if rule.get("resourceNames"):
                    resources += " named " + ", ".join(f"`{n}`" for n in rule["resourceNames"])
                group = ", ".join(g or "core" for g in rule["apiGroups"])
                rows.append(f"| {component} | {role['kind']} | {scope} | {group} | {resources} | "
                            f"{', '.join(rule['verbs'])} | {reason} |")
    return "\n".join(rows)


def test_every_rule_names_exactly_what_it_grants_and_why():
    for component in COMPONENTS:
        for role, reasons in _documents(component):
            assert role["metadata"]["name"] == f"greenlang-registry:component:{component}"
            assert role["kind"] in ("ClusterRole", "Role")
            for rule, reason in zip(role["rules"], reasons, strict=True):
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in "".join(rule.get(field) or []), f"{component}: a wildcard in {field}: {rule}"
                assert reason, f"{component}: a rule without a comment saying which code needs it: {rule}"
                assert "nonResourceURLs" not in rule


def test_the_table_in_docs_matches_the_roles():
    text = DOC.read_text()
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    expected = render()
    assert table == expected, f"docs/rbac.md's table is out of date; put this between the markers:\n{expected}"
