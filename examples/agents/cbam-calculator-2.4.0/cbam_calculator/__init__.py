"""CBAM Carbon Calculator 2.4: per-sector default values for 2025 and 2026."""
