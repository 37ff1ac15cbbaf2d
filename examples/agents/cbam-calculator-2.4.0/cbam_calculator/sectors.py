"""CBAM sectors and their default intensities by reporting year (tCO2e per tonne; per MWh for electricity).

Illustrative values for the demo. One record per sector, matched on CN code prefixes; a record's
``country`` values replace its defaults for goods from that country, in every year.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Intensity:
    direct: float
    indirect: float


@dataclass(frozen=True)
class Sector:
    name: str
    prefixes: tuple[str, ...]
    by_year: dict[str, Intensity]
    country: dict[str, Intensity] = field(default_factory=dict)


SECTORS = [
    Sector("cement clinker", ("25231000",),
           {"2025": Intensity(0.84, 0.02), "2026": Intensity(0.83, 0.02)}),
    Sector("cement", ("2523",),
           {"2025": Intensity(0.66, 0.05), "2026": Intensity(0.64, 0.05)},
           {"CN": Intensity(0.70, 0.07), "IN": Intensity(0.72, 0.08), "TR": Intensity(0.74, 0.05)}),
    Sector("pig iron", ("7201",),
           {"2025": Intensity(1.75, 0.08), "2026": Intensity(1.72, 0.08)}),
    Sector("iron and steel", ("72", "73"),
           {"2025": Intensity(1.85, 0.25), "2026": Intensity(1.80, 0.24)},
           {"CN": Intensity(2.10, 0.40), "IN": Intensity(2.30, 0.45), "TR": Intensity(1.45, 0.30)}),
    Sector("unwrought aluminium", ("7601",),
           {"2025": Intensity(1.65, 5.80), "2026": Intensity(1.60, 5.60)}),
    Sector("aluminium products", ("76",),
           {"2025": Intensity(1.90, 6.10), "2026": Intensity(1.85, 5.90)}, {"CN": Intensity(2.00, 9.50)}),
    Sector("nitric acid", ("2808",), {"2025": Intensity(0.95, 0.02), "2026": Intensity(0.90, 0.02)}),
    Sector("ammonia", ("2814",), {"2025": Intensity(2.40, 0.10), "2026": Intensity(2.35, 0.10)}),
    Sector("fertilisers", ("3102", "3105"), {"2025": Intensity(1.70, 0.10), "2026": Intensity(1.65, 0.10)}),
    Sector("hydrogen", ("28041000",), {"2025": Intensity(9.80, 0.90), "2026": Intensity(9.50, 0.85)}),
    Sector("electricity", ("27160000",), {"2025": Intensity(0.45, 0.0), "2026": Intensity(0.42, 0.0)},
           {"UA": Intensity(0.38, 0.0)}),
]

# Headings with their own benchmark, replacing the sector's default for that year.
HEADING_BENCHMARKS = {
    "7208": ("2026", Intensity(1.92, 0.26)),
    "7601": {"2026": Intensity(1.58, 5.50)},
}
