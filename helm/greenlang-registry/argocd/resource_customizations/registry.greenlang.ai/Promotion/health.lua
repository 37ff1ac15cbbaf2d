-- Health of a Promotion (registry.greenlang.ai).
-- A Promotion is a request the operator decides once; status.phase says where it stands and the
-- Succeeded condition's message names the checks that failed or are still missing.
-- - Succeeded -> Healthy: the version is in the target state.
-- - Rejected, Failed -> Degraded: final; it cannot succeed as asked (the transition is not
--   allowed, a required reason is missing) or its checks could not be evaluated before the
--   deadline. Fields are immutable, so the fix is a new Promotion.
-- - AwaitingApproval -> Suspended: every check passed and only a person's approval is missing
--   (four eyes); nothing moves until someone acts, like a paused rollout.
-- - Checking, Pending -> Progressing: waiting for results (evaluation, scan, usage, soak time).
-- Final phases are read before the generation check: the operator never revisits a decided
-- Promotion, so a later spec edit (an approval added afterwards) would otherwise look stuck.
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

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the registry operator to check the promotion"
  return hs
end

local phase = obj.status.phase
local succeeded = condition("Succeeded")
local detail = phase
if succeeded ~= nil and succeeded.message ~= nil and succeeded.message ~= "" then
  detail = succeeded.message
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = detail
  return hs
end
if phase == "Rejected" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = phase .. ": " .. detail
  return hs
end

if obj.metadata.generation ~= nil and obj.metadata.generation ~= obj.status.observedGeneration then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
if phase == "AwaitingApproval" then
  hs.status = "Suspended"
  hs.message = detail
  return hs
end
hs.status = "Progressing"
hs.message = detail
return hs
