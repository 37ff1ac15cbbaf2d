-- Team namespaces and private agents.
--
-- * A TenantPolicy's spec.teamNamespaces (where its teams publish Agents, AgentVersions and
--   Promotions) belong to that tenant as its environments do: search rows and audit rows of
--   objects there carry the tenant.
-- * A `private` agent is for readers of its own namespace: the tenant scope does not show it.

-- A namespace belongs to one tenant. Should several claim it (a race past admission; the
-- operator provisions it for one only), the oldest TenantPolicy (creationTimestamp, then name) keeps
-- it, so that search and audit rows never flip between tenants from one call to the next.
-- Called by audit_append (SECURITY DEFINER, as the tables' owner) and by the mirror itself: the
-- search path is pinned and the table named in full, so a caller's temporary table cannot stand
-- in for registry_objects.
CREATE OR REPLACE FUNCTION tenant_of_namespace(ns text) RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT name FROM public.registry_objects
    WHERE kind = 'TenantPolicy' AND NOT deleted
      AND (body -> 'spec' -> 'environments' @> jsonb_build_array(jsonb_build_object('namespace', ns))
           OR body -> 'spec' -> 'teamNamespaces' @> jsonb_build_array(ns))
    ORDER BY body -> 'metadata' ->> 'creationTimestamp', name
    LIMIT 1
$$;

-- Rows indexed before now: namespaces already listed as team namespaces get their tenant (the
-- mirror does the same whenever a TenantPolicy changes). Audit rows stay as written: the trail
-- is append-only.
UPDATE agent_search SET tenant = tenant_of_namespace(namespace)
WHERE tenant IS DISTINCT FROM tenant_of_namespace(namespace);

-- As in 0005, but the tenant scope no longer reaches private rows; the namespace scope (who may
-- list the namespace's AgentVersions) and the cluster scope still do. A private agent is never
-- public, whatever the state of its versions.
ALTER POLICY agent_search_reader ON agent_search USING (
    (visibility = 'public' AND state = 'certified')
    OR (SELECT greenlang_scope_all())
    OR (visibility <> 'private' AND tenant = ANY ((SELECT greenlang_scope_tenants())::text[]))
    OR namespace = ANY ((SELECT greenlang_scope_namespaces())::text[])
);
