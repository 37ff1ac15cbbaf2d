"""The user names the registry's own components authenticate as on the local control plane.

The API server's admission policies trust them by name (crds/admission_status.yaml,
crds/admission_events.yaml read them from the ConfigMap ``crd_install`` writes); on a cluster they
are the chart's ServiceAccounts. A client certificate's CN holds at most 64 characters, too few for
a ServiceAccount's user name.
"""

OPERATOR = "greenlang-registry-operator"
WEBHOOKS = "greenlang-registry-webhooks"
