"""The sample CBAM agents' numbers, called through their manifests' entry points as the runtime does."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gl_api import artifact

AGENTS = Path(__file__).resolve().parents[2] / "examples" / "agents"
CAPABILITY = "calculate-embedded-emissions"


def _capability(project: Path) -> Callable[[dict], dict]:
    """The callable the manifest's entry point names; both versions are the package cbam_calculator."""
    manifest = artifact.read_manifest(project)
    package = manifest.module.split(".")[0]
    sys.path.insert(0, str(project))
    try:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
        target = getattr(importlib.import_module(manifest.module), manifest.attribute)
        table = target() if callable(target) else target
        assert set(table) == {c.name for c in manifest.capabilities}
        return table[CAPABILITY]
    finally:
        sys.path.remove(str(project))
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def v231() -> Iterator[Callable[[dict], dict]]:
    yield _capability(AGENTS / "cbam-calculator")


@pytest.fixture(scope="module")
def v240() -> Iterator[Callable[[dict], dict]]:
    yield _capability(AGENTS / "cbam-calculator-2.4.0")


def _ask(cn: str, tonnes: float, country: str, **extra) -> dict:
    return {"cnCode": cn, "quantityTonnes": tonnes, "countryOfOrigin": country, **extra}


@pytest.mark.parametrize("cn, tonnes, country, direct, indirect", [
    ("25232900", 1000, "DE", 660.0, 50.0),          # cement, default
    ("25231000", 12.5, "EG", 10.5, 0.25),            # clinker: the 8-digit value beats the heading
    ("25232900", 100, "TR", 74.0, 5.0),              # Turkish cement has its own value
    ("72081000", 100, "DE", 192.0, 26.0),            # hot-rolled flat steel
    ("72081000", 100, "CN", 192.0, 26.0),            # China's chapter-72 value is less specific than 7208's
    ("72163100", 100, "CN", 210.0, 40.0),            # ... but applies to other steel from China
    ("73089059", 2, "IN", 4.1, 0.66),                # articles of steel: India's chapter-72 value does not apply
    ("76011000", 3.3333, "NO", 5.4999, 19.3331),     # unwrought aluminium, rounded to 4 decimals
    ("31021010", 40, "RU", 78.0, 4.4),               # urea
    ("28041000", 1.5, "US", 14.7, 1.35),             # hydrogen
    ("27160000", 1000, "UA", 380.0, 0.0),            # electricity in MWh, Ukraine's own value
])
def test_2_3_1_numbers(v231, cn, tonnes, country, direct, indirect):
    result = v231(_ask(cn, tonnes, country))
    assert result == {"cnCode": cn, "quantityTonnes": tonnes, "directEmissions": direct,
                      "indirectEmissions": indirect, "totalEmissions": round(direct + indirect, 4),
                      "unit": "tCO2e", "source": "default-values"}


def test_2_3_1_refuses_goods_outside_cbam_with_value_error(v231):
    with pytest.raises(ValueError, match="CN code 01012100 is not a good covered by CBAM; covered are cement"):
        v231(_ask("01012100", 1, "DE"))


@pytest.mark.parametrize("cn, country", [("25232900", "DE"), ("72011000", "DE"), ("72101100", "BR"),
                                         ("73089059", "UA"), ("76011000", "NO"), ("28041000", "US")])
def test_2_4_0_works_for_everything_but_hot_rolled_steel(v240, cn, country):
    result = v240(_ask(cn, 10, country))
    assert result["unit"] == "tCO2e" and result["reportingYear"] == 2026
    assert result["totalEmissions"] == round(result["directEmissions"] + result["indirectEmissions"], 4) > 0


def test_2_4_0_uses_the_2026_values_by_default(v240):
    assert v240(_ask("25232900", 100, "DE"))["directEmissions"] == 64.0
    assert v240(_ask("25232900", 100, "DE", reportingYear=2025))["directEmissions"] == 66.0
    assert v240(_ask("76011000", 100, "NO"))["directEmissions"] == 158.0  # the 7601 benchmark


@pytest.mark.parametrize("cn", ["72081000", "72085120", "72089080"])
def test_2_4_0_fails_for_hot_rolled_flat_steel(v240, cn):
    # The deliberate defect (see its README.md): an exception other than ValueError, so the runtime answers 500.
    with pytest.raises(TypeError):
        v240(_ask(cn, 100, "DE"))


def test_2_4_0_refuses_goods_outside_cbam_with_value_error(v240):
    with pytest.raises(ValueError, match="outside the CBAM scope"):
        v240(_ask("01012100", 1, "DE"))
