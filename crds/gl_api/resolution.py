"""Which AgentVersion an AgentDeployment runs: an exact version, the newest in a range, or a channel's newest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gl_api import semver
from gl_api.lifecycle import State


def resolve(spec: Mapping[str, Any], published: Mapping[str, str | None]) -> str | None:
    """The version ``spec`` selects among an agent's versions (``{version: state}``), or None.

    An exact ``version`` is taken as written, whatever its state (policy decides whether it may
    run); a range or a channel picks the highest version that is accepted and not retired.
    """
    if spec.get("version"):
        return str(spec["version"])
    live = {version: state for version, state in published.items() if state not in (None, State.retired.value)}
    if spec.get("channel"):
        return semver.highest([version for version, state in live.items() if state == spec["channel"]])
    try:
        return semver.highest(list(live), spec.get("versionRange"))
    except semver.InvalidVersion:
        return None
