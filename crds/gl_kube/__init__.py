"""The registry's one Kubernetes layer: how every component reaches the API server.

Above ``gl_api`` (the models) and below the components (operator, webhooks, mirror, CLI,
devenv), which never import each other:

- ``client``: one API client, in-cluster or from a kubeconfig read the way kubectl reads it;
- ``objects``: get, list, create and patch the registry's kinds, conflicts included;
- ``events``: Kubernetes Events for decisions;
- ``informer``: watch-backed local caches with indexes, for lookups on hot paths;
- ``leader``: leader election on a coordination.k8s.io Lease.
"""
