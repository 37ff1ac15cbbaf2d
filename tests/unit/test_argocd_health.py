"""The Argo CD health checks in helm/greenlang-registry/argocd, run as Argo CD runs them.

Argo CD evaluates ``health.lua`` in gopher-lua (Lua 5.1) with only the package, base and table
libraries and an ``os`` reduced to ``time`` and ``date`` (no string or math library, so strings
have no methods either), after decoding the object into tables: objects by key, arrays 1-based,
null as absent. Every case of every ``health_test.yaml`` is run that way here and compared with
its expected status and message, as Argo CD's own test of its resource customizations does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51
import pytest
import yaml

from gl_api import GROUP, kinds
from gl_api.lifecycle import State
from gl_api.models import DeploymentPhase, PromotionPhase

CUSTOMIZATIONS = (Path(__file__).resolve().parents[2] / "helm" / "greenlang-registry" / "argocd"
                  / "resource_customizations" / GROUP)
# What Argo CD accepts from a script; anything else it reports as Unknown.
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Leaves what Argo CD's VM opens (util/lua/lua.go): the string metatable goes first, while debug exists.
SANDBOX = """
debug.setmetatable("", nil)
for _, name in ipairs({"string", "math", "io", "debug", "coroutine", "python"}) do
  _G[name] = nil
  package.loaded[name] = nil
end
os = {time = os.time, date = os.date}
package.loaded.os = os
"""


def to_lua(lua: Any, value: Any, path: str = "obj") -> Any:
    """The object as Argo CD's decodeValue hands it to Lua."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            table[key] = to_lua(lua, item, f"{path}.{key}")
        return table
    if isinstance(value, list):
        return lua.table(*(to_lua(lua, item, f"{path}[{i}]") for i, item in enumerate(value)))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # e.g. an unquoted timestamp, which PyYAML reads as a datetime but the API server serves as a string
    raise TypeError(f"{path}: {type(value).__name__} is not JSON; quote it in the testdata")


def health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = lupa.lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(SANDBOX)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"] or ""}


def script(kind: str) -> str:
    return (CUSTOMIZATIONS / kind / "health.lua").read_text()


def cases() -> list[Any]:
    found = []
    for tests in sorted(CUSTOMIZATIONS.glob("*/health_test.yaml")):
        for case in yaml.safe_load(tests.read_text())["tests"]:
            kind = tests.parent.name
            found.append(pytest.param(kind, case, id=f"{kind}/{Path(case['inputPath']).stem}"))
    return found


def input_object(kind: str, case: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load((CUSTOMIZATIONS / kind / case["inputPath"]).read_text())


@pytest.mark.parametrize(("kind", "case"), cases())
def test_health_check_gives_the_expected_status_and_message(kind, case):
    got = health(script(kind), input_object(kind, case))
    assert got["status"] in HEALTH_STATUSES
    assert got == case["healthStatus"]


@pytest.mark.parametrize(("kind", "case"), cases())
def test_testdata_is_an_object_the_api_server_would_serve(kind, case):
    """Field names and enums from the models themselves (they forbid unknown fields)."""
    obj, model = input_object(kind, case), kinds.BY_KIND[kind]
    assert (obj["apiVersion"], obj["kind"]) == (model.api_version, model.kind)
    assert ("namespace" in obj["metadata"]) == model.namespaced
    model.spec.model_validate(obj["spec"])
    if "status" in obj:
        model.status.model_validate(obj["status"])


def test_every_kind_of_the_group_has_a_health_check_and_tests():
    assert sorted(p.name for p in CUSTOMIZATIONS.iterdir()) == sorted(k.kind for k in kinds.ALL)
    for kind in kinds.ALL:
        folder = CUSTOMIZATIONS / kind.kind
        tests = yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
        used = {case["inputPath"] for case in tests}
        assert used == {f"testdata/{p.name}" for p in (folder / "testdata").iterdir()}, \
            f"{kind.kind}: every testdata file is a case, every case has its file"
        assert {"Healthy", "Progressing"} <= {case["healthStatus"]["status"] for case in tests}, kind.kind


def test_the_sandbox_lacks_the_string_library_as_argo_cd_does():
    with pytest.raises(lupa.lua51.LuaError):
        health('return {status = string.lower("Healthy")}', {})
    with pytest.raises(lupa.lua51.LuaError):
        health('return {status = ("healthy"):upper()}', {})


def observed(kind: str, status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """The smallest object of ``kind`` the operator has caught up with."""
    return {"apiVersion": kinds.BY_KIND[kind].api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "team", "generation": 1},
            "spec": spec, "status": {"observedGeneration": 1, **status}}


@pytest.mark.parametrize("state", list(State))
def test_every_lifecycle_state_is_healthy_for_the_version_itself(state):
    """Retired included: moving a version through its lifecycle is the Promotions' business."""
    obj = observed("AgentVersion", {"state": state.value}, agent="cbam", version="2.3.1")
    assert health(script("AgentVersion"), obj)["status"] == "Healthy"


# Decided per phase in the scripts' header comments; a phase added to the models fails here until it is.
PROMOTION_HEALTH = {"Pending": "Progressing", "Checking": "Progressing", "AwaitingApproval": "Suspended",
                    "Succeeded": "Healthy", "Rejected": "Degraded", "Failed": "Degraded"}
DEPLOYMENT_HEALTH = {"Pending": "Progressing", "Progressing": "Progressing", "Available": "Healthy",
                     "Degraded": "Degraded", "RollingBack": "Degraded", "Failed": "Degraded"}


def test_every_promotion_phase_has_a_health():
    assert set(PROMOTION_HEALTH) == {phase.value for phase in PromotionPhase}
    for phase, expected in PROMOTION_HEALTH.items():
        obj = observed("Promotion", {"phase": phase}, agentVersion="cbam@2.3.1", targetState="certified")
        assert health(script("Promotion"), obj)["status"] == expected, phase


def test_every_deployment_phase_has_a_health():
    assert set(DEPLOYMENT_HEALTH) == {phase.value for phase in DeploymentPhase}
    for phase, expected in DEPLOYMENT_HEALTH.items():
        obj = observed("AgentDeployment", {"phase": phase}, agent="team/cbam", version="2.3.1")
        assert health(script("AgentDeployment"), obj)["status"] == expected, phase
