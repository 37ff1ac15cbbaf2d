-- Tenant isolation in the database: row-level security, enabled and forced, on every table that
-- holds a tenant's data, and a read scope that the reader role cannot widen.
--
-- Who sees what:
--   * the tables' owner (the mirror, which ran these migrations): every row, to write them;
--   * greenlang_app (the application): the whole audit trail, to verify its chain;
--   * greenlang_reader (what the query API becomes for each request, SET LOCAL ROLE, after the
--     API server authorised the user): certified public agents, plus the rows of the scope the
--     query API set for that transaction in greenlang.all / greenlang.tenants / greenlang.namespaces.
-- Anyone may change those settings; they count only in a session whose login is the application
-- (a member of greenlang_app or of the tables' owner). A login that is only a reader sets them in
-- vain, so the scope is the query API's to give, after its SubjectAccessReview.

-- Every body (drafts, TenantPolicies) was readable by every reader through this grant.
REVOKE ALL ON registry_objects, registry_object_history FROM greenlang_reader;

-- Functions read in policies pin their search path: a reader's temporary tables and functions
-- must not stand in for the catalog.
CREATE FUNCTION greenlang_trusted_session() RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_has_role(session_user, 'greenlang_app', 'MEMBER')
        OR pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'public.registry_objects'::regclass),
                       'MEMBER')
$$;

CREATE FUNCTION greenlang_scope_all() RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT public.greenlang_trusted_session() AND coalesce(current_setting('greenlang.all', true), '') = 'on'
$$;

CREATE FUNCTION greenlang_scope_tenants() RETURNS text[] LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN public.greenlang_trusted_session()
        THEN string_to_array(coalesce(current_setting('greenlang.tenants', true), ''), ',') END
$$;

CREATE FUNCTION greenlang_scope_namespaces() RETURNS text[] LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN public.greenlang_trusted_session()
        THEN string_to_array(coalesce(current_setting('greenlang.namespaces', true), ''), ',') END
$$;

-- Forced, so that the owner is bound by policies too; its own policy lets the mirror write.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['registry_objects', 'registry_object_history', 'agent_search', 'audit_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I TO %I USING (true) WITH CHECK (true)', t || '_mirror', t,
                       (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = t::regclass));
    END LOOP;
END $$;

-- registry_objects and registry_object_history: no policy for readers, so none of their rows.

-- The scope functions sit in sub-selects so that each runs once per query, not once per row.
DROP POLICY agent_search_visibility ON agent_search;
CREATE POLICY agent_search_reader ON agent_search FOR SELECT TO greenlang_reader USING (
    (visibility = 'public' AND state = 'certified')
    OR (SELECT greenlang_scope_all())
    OR tenant = ANY ((SELECT greenlang_scope_tenants())::text[])
    OR namespace = ANY ((SELECT greenlang_scope_namespaces())::text[])
);

CREATE POLICY audit_events_app ON audit_events FOR SELECT TO greenlang_app USING (true);
CREATE POLICY audit_events_reader ON audit_events FOR SELECT TO greenlang_reader USING (
    (SELECT greenlang_scope_all())
    OR tenant = ANY ((SELECT greenlang_scope_tenants())::text[])
    OR namespace = ANY ((SELECT greenlang_scope_namespaces())::text[])
);
-- Through the parent only: a partition has no policies, and readers have no grant on partitions.
GRANT SELECT ON audit_events TO greenlang_reader;

