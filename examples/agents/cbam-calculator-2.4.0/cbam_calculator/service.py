"""Entry point of 2.4.0: ``build()`` returns the capability table the runtime serves."""

from __future__ import annotations

from collections.abc import Callable

from cbam_calculator.sectors import HEADING_BENCHMARKS, SECTORS, Intensity, Sector


def find_sector(cn_code: str) -> tuple[Sector, str]:
    """The sector whose prefix matches the most digits of ``cn_code``, and that prefix."""
    matches = [(len(p), p, s) for s in SECTORS for p in s.prefixes if cn_code.startswith(p)]
    if not matches:
        covered = ", ".join(s.name for s in SECTORS)
        raise ValueError(f"CN code {cn_code} is outside the CBAM scope (covered: {covered})")
    _, prefix, sector = max(matches, key=lambda m: m[0])
    return sector, prefix


def lookup(cn_code: str, country: str, year: int) -> Intensity:
    sector, _ = find_sector(cn_code)
    if country in sector.country:
        return sector.country[country]
    benchmarks = HEADING_BENCHMARKS.get(cn_code[:4])
    if benchmarks is not None and str(year) in benchmarks:
        return benchmarks[str(year)]
    return sector.by_year[str(year)]


def embedded_emissions(payload: dict) -> dict:
    year = int(payload.get("reportingYear", 2026))
    tonnes = float(payload["quantityTonnes"])
    factor = lookup(payload["cnCode"], payload["countryOfOrigin"], year)
    direct, indirect = round(tonnes * factor.direct, 4), round(tonnes * factor.indirect, 4)
    return {
        "cnCode": payload["cnCode"], "quantityTonnes": tonnes, "reportingYear": year,
        "directEmissions": direct, "indirectEmissions": indirect,
        "totalEmissions": round(direct + indirect, 4), "unit": "tCO2e", "source": "default-values",
    }


def build() -> dict[str, Callable[[dict], dict]]:
    return {"calculate-embedded-emissions": embedded_emissions}
