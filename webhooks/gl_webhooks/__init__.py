"""Admission webhooks that ask OPA (the Rego policies in policies/) for governance decisions."""
