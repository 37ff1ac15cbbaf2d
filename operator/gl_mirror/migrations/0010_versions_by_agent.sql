-- Rebuilding one agent's search rows reads that agent's versions (search_index.refresh), on every
-- version event. Without an index on the agent, that read walked every AgentVersion of the
-- namespace, so a namespace of N versions cost N per event (found by `python -m bench memory`).
CREATE INDEX registry_objects_versions_by_agent ON registry_objects (namespace, (body -> 'spec' ->> 'agent'))
    WHERE kind = 'AgentVersion' AND NOT deleted;
