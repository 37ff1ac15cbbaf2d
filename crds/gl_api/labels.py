"""Label and annotation keys the registry reads and writes, in one place."""

from gl_api import GROUP

STATE = f"{GROUP}/state"
"""Label mirroring an AgentVersion's status.state (set by the operator)."""

AGENT = f"{GROUP}/agent"
"""Label naming the Agent of an AgentVersion (set by the operator), for selectors."""

CREATED_BY = f"{GROUP}/created-by"
"""Annotation: the authenticated user who created the object. For a Promotion this is the
requester; the API server (ValidatingAdmissionPolicy) checks it against the request's user."""

LAST_MODIFIED_BY = f"{GROUP}/last-modified-by"
"""Annotation: the authenticated user who last changed the object (stamped by the API server,
crds/admission_identity.yaml)."""

TENANT = f"{GROUP}/tenant"
"""Label on a tenant's namespaces and what the operator provisions in them: the TenantPolicy's name."""

ENVIRONMENT = f"{GROUP}/environment"
"""Label on a tenant's namespaces: dev, staging or production (the image guard selects production)."""

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR_NAME = "greenlang-registry-operator"
