"""The agent's one capability, as the GreenLang runtime calls it: a function from a dict to a dict.

Plain standard-library Python: the runtime validates input and output against the manifest's
JSON Schemas, and answers 422 with the message when this code raises ValueError (a CN code
outside the CBAM scope is the caller's mistake, not the agent's failure).
"""

from __future__ import annotations

from cbam_calculator.default_values import BY_COUNTRY, DEFAULTS, GOODS


def _longest_prefix(table: dict[str, tuple[float, float]], cn_code: str) -> str | None:
    for length in range(len(cn_code), 1, -1):
        if cn_code[:length] in table:
            return cn_code[:length]
    return None


def intensity(cn_code: str, country: str) -> tuple[float, float]:
    """(direct, indirect) tCO2e per unit: the country's own value where it has one, else the good's default."""
    prefix = _longest_prefix(DEFAULTS, cn_code)
    if prefix is None:
        raise ValueError(f"CN code {cn_code} is not a good covered by CBAM; covered are {GOODS}")
    overrides = BY_COUNTRY.get(country, {})
    override = _longest_prefix(overrides, cn_code)
    # A country value applies only if it is at least as specific as the default that matched.
    if override is not None and len(override) >= len(prefix):
        return overrides[override]
    return DEFAULTS[prefix]


def calculate_embedded_emissions(request: dict) -> dict:
    cn_code, quantity = request["cnCode"], float(request["quantityTonnes"])
    direct_per_unit, indirect_per_unit = intensity(cn_code, request["countryOfOrigin"])
    direct = round(quantity * direct_per_unit, 4)
    indirect = round(quantity * indirect_per_unit, 4)
    return {"cnCode": cn_code, "quantityTonnes": quantity, "directEmissions": direct,
            "indirectEmissions": indirect, "totalEmissions": round(direct + indirect, 4), "unit": "tCO2e",
            "source": "default-values"}


CAPABILITIES = {"calculate-embedded-emissions": calculate_embedded_emissions}
