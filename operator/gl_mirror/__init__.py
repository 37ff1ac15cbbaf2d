"""The Postgres mirror: a copy of the registry's objects for search, history and audit.

etcd stays the source of truth; the mirror watches the API server and writes what it sees.
"""
