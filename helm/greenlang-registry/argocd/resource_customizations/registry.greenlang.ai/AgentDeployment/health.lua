-- Health of an AgentDeployment (registry.greenlang.ai).
-- The operator resolves a version, rolls it out and judges it against spec.slo; status.phase
-- is its verdict and the Available / Progressing / SLOCompliant conditions say why.
-- - Available -> Healthy with the Available condition's message (N/M replicas of agent@version
--   ready), unless SLOCompliant=False for strategy.analysis.failureLimit measurements in a row:
--   the version serving breaches its objectives and there was nothing to roll back to, which a
--   user of Argo CD wants to see as Degraded. Fewer failures stay Healthy with a note, as the
--   operator itself tolerates them.
--   A deprecated version still runs: Healthy, with the VersionDeprecated warning appended.
-- - Pending, Progressing -> Progressing with the Progressing condition's message (waiting for
--   the version to be published, the canary step, the analysis under way).
-- - RollingBack -> Degraded: a version breached its SLOs and the operator is restoring the
--   previous one; the message names both versions and the breach.
-- - Degraded -> Degraded: running the version a breach sent it back to (the selected version is
--   held back until a newer one appears or the retry annotation changes), replicas lost, or a
--   quota refusing pods; the Available condition's message says which.
-- - Failed -> Degraded: nothing may run as specified (no tenant environment, a retired or
--   disallowed version, no image); the message names the fix.
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

local function message(conditionType, default)
  local c = condition(conditionType)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

if obj.status == nil or obj.status.observedGeneration == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the registry operator to resolve and deploy a version"
  return hs
end
if obj.metadata.generation ~= nil and obj.metadata.generation ~= obj.status.observedGeneration then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

-- The failed measurements the operator tolerates before it acts (strategy.analysis.failureLimit).
local function failure_limit()
  local strategy = obj.spec.strategy
  if strategy ~= nil and strategy.analysis ~= nil and strategy.analysis.failureLimit ~= nil then
    return strategy.analysis.failureLimit
  end
  return 1
end

local phase = obj.status.phase
if phase == "Available" then
  local slo = condition("SLOCompliant")
  local failed = obj.status.failedAnalyses or 0
  if slo ~= nil and slo.status == "False" and failed >= failure_limit() then
    hs.status = "Degraded"
    hs.message = "SLOs breached: " .. slo.message
    return hs
  end
  hs.status = "Healthy"
  hs.message = message("Available", "available")
  if slo ~= nil and slo.status == "False" and failed > 0 then
    hs.message = hs.message .. "; failed SLO measurement " .. failed .. " of " .. failure_limit() .. ": " ..
      slo.message
  end
  local deprecated = condition("VersionDeprecated")
  if deprecated ~= nil and deprecated.status == "True" then
    hs.message = hs.message .. "; " .. deprecated.message
  end
  return hs
end
if phase == "RollingBack" then
  local breach = obj.status.lastBreach
  hs.status = "Degraded"
  if breach ~= nil then
    hs.message = "rolling back from " .. breach.version .. " to " .. (breach.rolledBackTo or "the previous version") ..
      " after an SLO breach: " .. breach.message
  else
    hs.message = message("Progressing", "rolling back")
  end
  return hs
end
if phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message("Available", "degraded")
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message("Progressing", message("Available", "failed"))
  return hs
end
hs.status = "Progressing"
hs.message = message("Progressing", message("Available", phase))
return hs
