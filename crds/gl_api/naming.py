"""The one rule that turns `agent@version` into an AgentVersion object name, and back.

An AgentVersion is named ``<agent>-<version>``: ``gl-cbam-calculator-v2@2.3.1`` is the
object ``gl-cbam-calculator-v2-2.3.1``. Agent names are DNS labels (no dots) and a
version starts with ``N.N.N``, so the split is unambiguous: the version starts after
the last dash before the first dot. The API server enforces the rule with CEL, so two
objects for the same agent and version cannot exist in one namespace.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gl_api import semver

REGISTRY_NAMESPACE = "greenlang-system"
"""Where the registry's own components run."""
RESERVED_NAMESPACES = ("default", REGISTRY_NAMESPACE)
RESERVED_NAMESPACE_PREFIXES = ("kube-",)
"""Namespaces no TenantPolicy may claim: the cluster's and the registry's own."""

AGENT_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
AGENT_NAME_MAX = 63
AGENT_NAME_HINT = "a lowercase DNS label such as gl-cbam-calculator-v2 (letters, digits and '-', at most 63)"
_AGENT_RE = re.compile(AGENT_NAME_PATTERN)
REF_PATTERN = AGENT_NAME_PATTERN.rstrip("$") + "@" + semver.VERSION_PATTERN.lstrip("^")


class InvalidReference(ValueError):
    pass


def agent_id(display_name: str) -> str:
    """The agent id `gl agent publish --name` derives from a display name when no ``--id`` is given.

    The rule (docs/cli.md): accents dropped (NFKD, then ASCII), lowercase, every run of characters
    other than a-z and 0-9 becomes one '-', leading and trailing '-' trimmed, cut to 63 characters
    (and trimmed again). "CBAM Carbon Calculator" -> "cbam-carbon-calculator". What remains must be
    a DNS label starting with a letter; otherwise the error says to give ``--id``.
    """
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    derived = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:AGENT_NAME_MAX].strip("-")
    if not derived:
        raise InvalidReference(f"no agent id can be derived from the name {display_name!r}: it has no letters or "
                               f"digits; give --id, {AGENT_NAME_HINT}")
    if not _AGENT_RE.match(derived):
        raise InvalidReference(f"the agent id derived from the name {display_name!r} would be {derived!r}, which "
                               f"does not start with a letter; give --id, {AGENT_NAME_HINT}")
    return derived


@dataclass(frozen=True)
class AgentVersionRef:
    agent: str
    version: str

    @classmethod
    def parse(cls, text: str) -> AgentVersionRef:
        """Parse ``agent@version``; the error says what a good reference looks like."""
        agent, sep, version = text.partition("@")
        if not sep:
            raise InvalidReference(f"{text!r} is not an agent reference: write AGENT@VERSION, e.g. gl-cbam-calculator-v2@2.3.1")
        if not _AGENT_RE.match(agent) or len(agent) > AGENT_NAME_MAX:
            raise InvalidReference(f"agent {agent!r} in {text!r} is not {AGENT_NAME_HINT}")
        if not semver.is_valid(version):
            raise InvalidReference(f"version {version!r} in {text!r} is not {semver.VERSION_HINT}")
        return cls(agent, version)

    @property
    def object_name(self) -> str:
        return object_name(self.agent, self.version)

    def __str__(self) -> str:
        return f"{self.agent}@{self.version}"


def object_name(agent: str, version: str) -> str:
    return f"{agent}-{version}"


def parse_object_name(name: str) -> AgentVersionRef:
    """Inverse of :func:`object_name`."""
    head = name.split(".", 1)[0]
    cut = head.rfind("-")
    if cut <= 0 or "." not in name:
        raise InvalidReference(f"{name!r} is not an AgentVersion name of the form <agent>-<version>")
    return AgentVersionRef.parse(f"{name[:cut]}@{name[cut + 1:]}")
