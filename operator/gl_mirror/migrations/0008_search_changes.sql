-- Search as an index query (issue 13): the mirror keeps every row's embedding in memory (a vector
-- index) and follows agent_search's changes instead of reading every row on every search.
--
-- * Each row records the transaction that wrote it (`written`). A follower remembers the oldest
--   transaction still running when it last read (pg_snapshot_xmin) and next reads the rows written
--   from there on: a transaction that commits late is read then, never skipped.
-- * Deleted rows leave a tombstone with the deleting transaction, read the same way. Tombstones
--   are pruned after an hour; a follower that has not read for half of that reloads everything.
-- * Trigram matches for typos are found through agent_search_trigrams (`<%`), full-text matches
--   through agent_search_document (`@@`): only matching rows are ranked.

ALTER TABLE agent_search ADD COLUMN written xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX agent_search_by_written ON agent_search (written);

CREATE TABLE agent_search_removed (
    uid      uuid NOT NULL,
    written  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_search_removed_by_written ON agent_search_removed (written);
CREATE INDEX agent_search_removed_by_at ON agent_search_removed (at);

CREATE FUNCTION agent_search_tombstone() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.agent_search_removed (uid) VALUES (OLD.uid);
    RETURN NULL;
END $$;

CREATE FUNCTION agent_search_prune_tombstones() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM public.agent_search_removed WHERE at < now() - interval '1 hour';
    RETURN NULL;
END $$;

-- An update that changes what a follower holds (today rows are deleted and inserted again) is a new write.
CREATE FUNCTION agent_search_rewritten() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.written := pg_current_xact_id();
    RETURN NEW;
END $$;

CREATE TRIGGER agent_search_tombstone AFTER DELETE ON agent_search
    FOR EACH ROW EXECUTE FUNCTION agent_search_tombstone();
CREATE TRIGGER agent_search_prune_tombstones AFTER DELETE ON agent_search
    FOR EACH STATEMENT EXECUTE FUNCTION agent_search_prune_tombstones();
CREATE TRIGGER agent_search_rewritten BEFORE UPDATE OF embedding ON agent_search
    FOR EACH ROW EXECUTE FUNCTION agent_search_rewritten();
