"""`gl`, also the kubectl plugin `kubectl gl`: the registry's command line."""
