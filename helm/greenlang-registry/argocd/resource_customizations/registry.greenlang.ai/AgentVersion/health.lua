-- Health of an AgentVersion (registry.greenlang.ai).
-- An AgentVersion in git declares "this release exists"; its lifecycle state is moved by
-- Promotions (whose own health shows the checks and approvals), not by this object. So every
-- state the operator accepted it into is Healthy: draft, experimental, certified, deprecated
-- (with the replacement and sunset in the message) and retired, which is final and the desired
-- end of a release. Its Ready condition is False in draft, deprecated and retired by design
-- (Ready means "may serve"), so it is not read here.
-- Degraded: the operator refused to accept it (Accepted=False: its Agent is missing, or the
-- version number was published before with other bits); the message names the fix.
-- Progressing: published but not accepted yet (an evaluator may have written status first).
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
  hs.message = "waiting for the registry operator to accept the version"
  return hs
end
if obj.metadata.generation ~= nil and obj.metadata.generation ~= obj.status.observedGeneration then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local accepted = condition("Accepted")
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = accepted.message
  return hs
end

local state = obj.status.state
if state == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the registry operator to accept the version"
  return hs
end

hs.status = "Healthy"
hs.message = obj.spec.agent .. "@" .. obj.spec.version .. " is " .. state
local deprecation = obj.status.deprecation
if state == "deprecated" and deprecation ~= nil then
  hs.message = hs.message .. "; replacement " .. (deprecation.replacement or "none") ..
    ", sunset " .. (deprecation.sunsetAt or "not set")
end
return hs
