-- The mirror's search index holds each row's visibility columns too (tenant, state, ...), not only
-- its embedding: any update of a row is a new write for its followers. A TenantPolicy change
-- re-derives tenants in place (search_index.retenant), which 0008's trigger did not count.
DROP TRIGGER agent_search_rewritten ON agent_search;
CREATE TRIGGER agent_search_rewritten BEFORE UPDATE ON agent_search
    FOR EACH ROW EXECUTE FUNCTION agent_search_rewritten();
