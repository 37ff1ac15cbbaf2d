"""`gl-webhooks`: the registry's admission webhooks, a stateless server of their own.

It answers from watch-backed caches and asks an OPA server (or the embedded regopy interpreter)
for every governance decision. It runs beside, never inside, the operator: registry writes
keep working while the operator restarts, and reconciles cannot slow admission down.
"""
