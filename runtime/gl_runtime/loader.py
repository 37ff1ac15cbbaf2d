"""Unpack a verified artifact and import its entry point: one callable per capability.

The entry point (``package.module:attribute`` in greenlang-agent.yaml) is either a mapping
``{capability name: callable(dict) -> dict}`` or a zero-argument callable returning one. Every
capability the manifest declares must have a callable, or the runtime refuses to start.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gl_api import artifact
from gl_api.artifact import Manifest
from gl_api.models import Capability
from gl_runtime.validation import CapabilityValidators

Handler = Callable[[dict[str, Any]], Any]


class LoadError(Exception):
    pass


@dataclass(frozen=True)
class LoadedCapability:
    spec: Capability
    handler: Handler
    validators: CapabilityValidators


@dataclass(frozen=True)
class LoadedAgent:
    manifest: Manifest
    capabilities: dict[str, LoadedCapability]


def _table(manifest: Manifest) -> Mapping[str, Any]:
    try:
        module = importlib.import_module(manifest.module)
    except Exception as error:
        raise LoadError(f"importing entrypoint module {manifest.module} failed: {type(error).__name__}: {error}") \
            from error
    try:
        target = getattr(module, manifest.attribute)
    except AttributeError:
        raise LoadError(f"entrypoint {manifest.entrypoint}: module {manifest.module} has no attribute "
                        f"{manifest.attribute}") from None
    if not isinstance(target, Mapping) and callable(target):
        try:
            target = target()
        except Exception as error:
            raise LoadError(f"entrypoint {manifest.entrypoint}() raised {type(error).__name__}: {error}") from error
    if not isinstance(target, Mapping):
        raise LoadError(f"entrypoint {manifest.entrypoint} must be a mapping {{capability: callable}} or a "
                        f"zero-argument callable returning one, not {type(target).__name__}")
    return target


def load(data: bytes, work_dir: Path) -> LoadedAgent:
    """Unpack ``data`` (already digest-verified) under ``work_dir`` and bind every capability."""
    target = work_dir / "artifact"
    shutil.rmtree(target, ignore_errors=True)  # a restarted container must not mix two artifacts
    try:
        manifest = artifact.unpack(data, target)
    except artifact.ArtifactError as error:
        raise LoadError(str(error)) from error
    sys.path.insert(0, str(target))
    table = _table(manifest)
    missing = [c.name for c in manifest.capabilities if not callable(table.get(c.name))]
    if missing:
        raise LoadError(f"entrypoint {manifest.entrypoint} has no callable for capability "
                        f"{', '.join(missing)}; it offers: {', '.join(map(str, table)) or 'nothing'}")
    loaded = {}
    for capability in manifest.capabilities:
        try:
            validators = CapabilityValidators.of(capability)
        except ValueError as error:
            raise LoadError(str(error)) from error
        loaded[capability.name] = LoadedCapability(capability, table[capability.name], validators)
    return LoadedAgent(manifest, loaded)
