"""CBAM Carbon Calculator: embedded emissions of goods imported into the EU, from default values."""
