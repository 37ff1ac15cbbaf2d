-- Health of an Agent (registry.greenlang.ai).
-- An Agent rolls nothing out: the operator only summarises its versions into status (latest,
-- certified, counts) and sets Ready=True whenever it has done so for the current generation.
-- So an Agent the operator has caught up with is Healthy, with or without versions; until then
-- it is Progressing. The operator never sets Ready=False on an Agent.
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
  hs.message = "waiting for the registry operator to summarise the agent's versions"
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
hs.status = "Progressing"
hs.message = "waiting for the Ready condition"
return hs
