"""Resource models of the five registry kinds; the CRDs in ``crds/`` are generated from them.

Every field carries a description (it becomes ``kubectl explain`` text), every string and
list a bound (the API server prices CEL rules by them), and rules the API server must
enforce on its own are written here as CEL with a message that names the fix.

One module per kind, plus ``base`` for what they share; import them from here.
"""

from gl_api.models.agent import (  # noqa: F401
    AgentSpec,     AgentStatus,     AgentType,     Owner,     VersionCounts,     Visibility,
)
from gl_api.models.agent_deployment import (  # noqa: F401
    AgentDeploymentSpec,     AgentDeploymentStatus,     Analysis,     Autoscaling,     Breach,     CanaryStep,
    Channel,     DeploymentPhase,     ErrorBudget,     Replicas,     Slo,     SloMeasurement,     Strategy,
    StrategyType,
)
from gl_api.models.agent_version import (  # noqa: F401
    AgentVersionSpec,     AgentVersionStatus,     Artifact,     Capability,     Dependency,
    DeprecationStatus,     Evaluation,     RuntimeSpec,     SecurityScan,     StateTransition,     Usage,
)
from gl_api.models.base import (  # noqa: F401
    DIGEST_PATTERN,     DNS_LABEL,     DOMAIN_PATTERN,     IMAGE_PATTERN,     LONG_TEXT,     QUANTITY_PATTERN,
    SHORT,     TEXT,     Condition,     Conditions,     ConditionStatus,     Model,     Quantity,
    ResourceList,     Resources,     cel,     immutable,
)
from gl_api.models.promotion import (  # noqa: F401
    Approval,     Check,     DeprecationRequest,     FastTrack,     PromotionPhase,     PromotionSpec,
    PromotionStatus,
)
from gl_api.models.tenant_policy import (  # noqa: F401
    AgentRules,     DataResidency,     Environment,     EnvironmentName,     Member,     Quotas,     Role,
    TenantPolicySpec,     TenantPolicyStatus,
)
