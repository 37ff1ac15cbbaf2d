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

AUDIT = f"{GROUP}/audit"
"""Label on the Events the audit trail keeps (denials, rollbacks): only the registry's own components
may post them (crds/admission_events.yaml), and the mirror reads no other."""

TENANT = f"{GROUP}/tenant"
"""Label on a tenant's namespaces and what the operator provisions in them: the TenantPolicy's name."""

ENVIRONMENT = f"{GROUP}/environment"
"""Label on a tenant's namespaces: dev, staging or production (the image guard selects production)."""

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR_NAME = "greenlang-registry-operator"

# Recommended Kubernetes labels, on every object the operator runs an agent with.
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
APP_VERSION = "app.kubernetes.io/version"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
PART_OF_VALUE = "greenlang-registry"
MANAGED_BY_VALUE = "greenlang-registry"
"""app.kubernetes.io/managed-by on an AgentDeployment's workloads (tenant objects say OPERATOR_NAME)."""

VERSION = f"{GROUP}/version"
"""Label on an AgentDeployment's Deployments and pods: the agent version they run."""

DEPLOYMENT = f"{GROUP}/deployment"
"""Label on everything an AgentDeployment owns: its name (Prometheus relabels it to `agentdeployment`)."""

RETRY = f"{GROUP}/retry"
"""Annotation on an AgentDeployment: change its value to retry versions rolled back after an SLO breach."""

STABLE_HISTORY = f"{GROUP}/stable-history"
"""Annotation on an AgentDeployment's serving Deployment: earlier stable versions, newest first, the
versions an SLO breach rolls back to."""

ADOPTABLE = f"{GROUP}/adoptable"
"""Annotation a cluster admin puts on an existing namespace ("true") so that a TenantPolicy may claim
it as an environment; without it a TenantPolicy only gets namespaces that are new or already its own."""
