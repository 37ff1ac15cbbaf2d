"""Default emission intensities of CBAM goods, in tCO2e per tonne of good (per MWh for electricity).

Illustrative values in the range of the EU's published CBAM default values, for the demo; a real
release would load the Commission's current table. Keys are CN code prefixes; the longest prefix
that matches a CN code wins, so a heading (4 digits) refines its chapter (2 digits).
Each entry is (direct, indirect).
"""

DEFAULTS: dict[str, tuple[float, float]] = {
    # Cement
    "2523": (0.66, 0.05),
    "25231000": (0.84, 0.02),  # clinker: nearly all the process emissions
    # Iron and steel
    "72": (1.85, 0.25),
    "7201": (1.75, 0.08),  # pig iron
    "7208": (1.92, 0.26),  # flat-rolled, hot-rolled
    "73": (2.05, 0.33),  # articles of iron or steel
    # Aluminium: electrolysis makes the indirect (electricity) share large
    "7601": (1.65, 5.80),
    "76": (1.90, 6.10),
    # Fertilisers
    "2808": (0.95, 0.02),  # nitric acid
    "2814": (2.40, 0.10),  # ammonia
    "3102": (1.95, 0.11),  # mineral or chemical nitrogen fertilisers
    "3105": (1.40, 0.09),  # mixed fertilisers
    # Hydrogen
    "28041000": (9.80, 0.90),
    # Electricity, per MWh: no indirect emissions by definition
    "27160000": (0.45, 0.0),
}

# Country-specific values where the exporting grid or process mix differs markedly from the default.
BY_COUNTRY: dict[str, dict[str, tuple[float, float]]] = {
    "CN": {"72": (2.10, 0.40), "76": (2.00, 9.50), "2523": (0.70, 0.07)},
    "IN": {"72": (2.30, 0.45), "2523": (0.72, 0.08)},
    "TR": {"72": (1.45, 0.30), "2523": (0.74, 0.05)},
    "UA": {"72": (2.00, 0.28), "27160000": (0.38, 0.0)},
}

GOODS = "cement (2523), iron and steel (72, 73), aluminium (76), fertilisers (2808, 2814, 3102, 3105), " \
        "hydrogen (28041000) and electricity (27160000)"
