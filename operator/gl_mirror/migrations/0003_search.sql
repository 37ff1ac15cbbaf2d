-- Search over agent versions: weighted full-text, trigram similarity for typos, and embeddings
-- (ranked in the mirror). Row-level security decides who sees what, per query.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

DO $$ BEGIN
    CREATE ROLE greenlang_reader NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE agent_search (
    uid           uuid PRIMARY KEY,            -- the AgentVersion's uid
    namespace     text NOT NULL,
    agent         text NOT NULL,
    version       text NOT NULL,
    state         text,
    domain        text,
    type          text,
    tags          text[] NOT NULL DEFAULT '{}',
    visibility    text NOT NULL DEFAULT 'tenant',
    tenant        text,
    display_name  text,
    description   text,
    capabilities  text,
    search_text   text NOT NULL,
    document      tsvector NOT NULL,
    embedding     real[] NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_search_document ON agent_search USING gin (document);
CREATE INDEX agent_search_trigrams ON agent_search USING gin (search_text gin_trgm_ops);
CREATE INDEX agent_search_by_agent ON agent_search (namespace, agent);

-- Drafts and tenant-only agents stay inside their tenant; certified public agents are for all.
-- The caller's identity is set per transaction (SET LOCAL greenlang.tenants / greenlang.all).
ALTER TABLE agent_search ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_search_visibility ON agent_search FOR SELECT TO greenlang_reader USING (
    coalesce(current_setting('greenlang.all', true), '') = 'on'
    OR tenant = ANY (string_to_array(coalesce(current_setting('greenlang.tenants', true), ''), ','))
    OR (visibility = 'public' AND state = 'certified')
);
GRANT SELECT ON agent_search TO greenlang_reader;
-- Usage summaries join versions to their mirrored status; the search row's policy already filtered them.
GRANT SELECT (uid, body) ON registry_objects TO greenlang_reader;
GRANT greenlang_reader TO greenlang_app;
