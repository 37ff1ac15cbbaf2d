"""End-to-end tests against a real control plane."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
