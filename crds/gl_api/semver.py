"""Semantic Versioning 2.0 as the registry accepts it, and `agent@version` references.

The registry takes the SemVer 2.0 grammar with two restrictions, because a version is
also part of a Kubernetes object name: letters must be lowercase, and build metadata
(``+build.5``) is refused (it carries no precedence, so it cannot tell two releases
apart). The same regular expression is enforced by the API server (CEL) and by Python.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_NUMERIC = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[a-z-][0-9a-z-]*)"
VERSION_PATTERN = rf"^{_NUMERIC}\.{_NUMERIC}\.{_NUMERIC}(?:-{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*)?$"
VERSION_HINT = (
    "a Semantic Versioning 2.0 version such as 2.3.1 or 2.4.0-rc.1 "
    "(lowercase, no leading zeros, no build metadata '+...')"
)
_VERSION_RE = re.compile(VERSION_PATTERN)


class InvalidVersion(ValueError):
    pass


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        if not _VERSION_RE.match(text):
            raise InvalidVersion(f"{text!r} is not {VERSION_HINT}")
        core, _, pre = text.partition("-")
        major, minor, patch = (int(part) for part in core.split("."))
        return cls(major, minor, patch, tuple(pre.split(".")) if pre else ())

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.prerelease)}" if self.prerelease else core

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # SemVer 2.0 §11: a release outranks its pre-releases; numeric identifiers rank
        # below alphanumeric ones and compare as numbers; a longer identifier list wins ties.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)


def is_valid(text: str) -> bool:
    return bool(_VERSION_RE.match(text))


_COMPARATOR = re.compile(r"^(>=|<=|>|<|=)?(.+)$")


def satisfies(version: Version, version_range: str) -> bool:
    """Whether ``version`` meets every space-separated comparator, e.g. ``>=2.3.0 <3.0.0``.

    Pre-releases match only when a comparator names a pre-release of the same major.minor.patch
    (as npm does), so ``>=2.3.0`` never silently picks ``3.0.0-rc.1``.
    """
    comparators = version_range.split()
    if not comparators:
        raise InvalidVersion("an empty version range matches nothing; write e.g. '>=2.3.0 <3.0.0'")
    prerelease_allowed = not version.is_prerelease
    for comparator in comparators:
        match = _COMPARATOR.match(comparator)
        operator, bound_text = (match.group(1) or "="), match.group(2)  # type: ignore[union-attr]
        bound = Version.parse(bound_text)
        if bound.is_prerelease and (bound.major, bound.minor, bound.patch) == (version.major, version.minor,
                                                                               version.patch):
            prerelease_allowed = True
        if not {"=": version == bound, ">": version > bound, ">=": version >= bound,
                "<": version < bound, "<=": version <= bound}[operator]:
            return False
    return prerelease_allowed


def highest(candidates: list[str], version_range: str | None = None) -> str | None:
    """The highest of ``candidates`` (version strings), optionally within ``version_range``."""
    parsed = [Version.parse(c) for c in candidates if is_valid(c)]
    if version_range:
        parsed = [v for v in parsed if satisfies(v, version_range)]
    return str(max(parsed)) if parsed else None
