-- Health of a TenantPolicy (registry.greenlang.ai).
-- The operator provisions the tenant's namespaces, quotas, limits, network policies and role
-- bindings, then sets Ready for the generation it provisioned.
-- - Ready=True (Provisioned) -> Healthy, with what was provisioned.
-- - Ready=False -> Degraded with the operator's message: a namespace it may not claim
--   (NamespaceNotClaimable: another tenant's, or not the registry's to take) needs a change to
--   the spec; a failed provisioning (ProvisioningFailed) names the API server's answer and is
--   retried, turning Healthy by itself once it passes.
-- A TenantPolicy being deleted while AgentDeployments still run in it (DeletionBlocked) is shown
-- by Argo CD itself as "Pending deletion" before this script runs.
-- Argo CD runs this with only Lua's base and table libraries: no string or math functions.
local hs = {}

local function condition(conditionType)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the registry operator to provision the tenant"
  return hs
end
if obj.metadata.generation ~= nil and obj.metadata.generation ~= obj.status.observedGeneration then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message
  return hs
end
hs.status = "Progressing"
hs.message = "waiting for the Ready condition"
return hs
