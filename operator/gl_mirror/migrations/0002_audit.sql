-- The audit trail: append-only, hash-chained, partitioned by month.
--
-- Rows are added only through audit_append(), which serialises writers, links each row to the
-- previous one by hash, and creates the month's partition on demand. The application role may
-- call it and read, never UPDATE or DELETE; a trigger refuses both for everyone else too.

DO $$ BEGIN
    CREATE ROLE greenlang_app NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE audit_events (
    id          bigint      NOT NULL,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    tenant      text,
    kind        text,
    namespace   text,
    name        text,
    uid         uuid,
    operation   text        NOT NULL,
    change      jsonb,
    request_uid text,
    decision    text,
    reason      text,
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX audit_events_by_object ON audit_events (kind, namespace, name, at DESC);
CREATE INDEX audit_events_by_actor ON audit_events (actor, at DESC);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant, at DESC);
CREATE SEQUENCE audit_events_id;

-- What expiry removed: the last hash of a dropped partition anchors the chain that remains.
CREATE TABLE audit_anchors (
    partition  text PRIMARY KEY,
    last_id    bigint NOT NULL,
    last_hash  text   NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_digest(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws(chr(31),
        e.id, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), e.actor, e.tenant, e.kind,
        e.namespace, e.name, e.uid, e.operation, e.change, e.request_uid, e.decision, e.reason, e.prev_hash),
        'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

CREATE FUNCTION audit_ensure_partition(moment timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', moment AT TIME ZONE 'UTC')::date;
    partition text := format('audit_events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    IF to_regclass(partition) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                       partition, first_day::timestamp AT TIME ZONE 'UTC',
                       (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END IF;
END $$;

-- The tenant whose environment a namespace is, from the mirrored TenantPolicies.
CREATE FUNCTION tenant_of_namespace(ns text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT name FROM registry_objects
    WHERE kind = 'TenantPolicy' AND NOT deleted
      AND body -> 'spec' -> 'environments' @> jsonb_build_array(jsonb_build_object('namespace', ns))
    LIMIT 1
$$;

CREATE FUNCTION audit_append(p_at timestamptz, p_actor text, p_tenant text, p_kind text, p_namespace text,
                             p_name text, p_uid uuid, p_operation text, p_change jsonb, p_request_uid text,
                             p_decision text, p_reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    previous text;
    row audit_events;
BEGIN
    PERFORM pg_advisory_xact_lock(7412002);  -- one writer at a time keeps the chain linear
    PERFORM audit_ensure_partition(p_at);
    SELECT hash INTO previous FROM audit_events ORDER BY id DESC LIMIT 1;
    IF previous IS NULL THEN
        SELECT last_hash INTO previous FROM audit_anchors ORDER BY last_id DESC LIMIT 1;
    END IF;
    row := ROW(nextval('audit_events_id'), p_at, p_actor, coalesce(p_tenant, tenant_of_namespace(p_namespace)), p_kind, p_namespace, p_name, p_uid,
               p_operation, p_change, p_request_uid, p_decision, p_reason, coalesce(previous, 'genesis'), '');
    row.hash := audit_digest(row);
    INSERT INTO audit_events SELECT row.*;
    RETURN row.id;
END $$;

-- Every row whose hash does not match its content, or whose link to the previous row is broken.
CREATE FUNCTION audit_verify() RETURNS TABLE (id bigint, problem text) LANGUAGE sql STABLE AS $$
    WITH chain AS (
        SELECT e.*, audit_digest(e) AS recomputed,
               lag(e.hash) OVER (ORDER BY e.id) AS previous_hash,
               row_number() OVER (ORDER BY e.id) AS position
        FROM audit_events e)
    SELECT chain.id, CASE
        WHEN chain.recomputed <> chain.hash THEN 'content changed: hash does not match the row'
        ELSE 'chain broken: previous row missing or changed' END
    FROM chain
    WHERE chain.recomputed <> chain.hash
       OR (chain.position > 1 AND chain.prev_hash <> chain.previous_hash)
       OR (chain.position = 1 AND chain.prev_hash <> coalesce(
            (SELECT last_hash FROM audit_anchors ORDER BY last_id DESC LIMIT 1), 'genesis'))
    ORDER BY chain.id
$$;

-- Drop whole months older than the retention, anchoring the chain and recording that it happened.
CREATE FUNCTION audit_expire(retention_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    part record;
    dropped integer := 0;
    last record;
BEGIN
    PERFORM pg_advisory_xact_lock(7412002);
    FOR part IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass ORDER BY c.relname
    LOOP
        IF (regexp_match(part.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz
                < now() - make_interval(days => retention_days) THEN
            EXECUTE format('SELECT id, hash FROM %I ORDER BY id DESC LIMIT 1', part.relname) INTO last;
            IF last.id IS NOT NULL THEN
                INSERT INTO audit_anchors (partition, last_id, last_hash) VALUES (part.relname, last.id, last.hash);
            END IF;
            EXECUTE format('ALTER TABLE audit_events DETACH PARTITION %I', part.relname);
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
            PERFORM audit_append(now(), 'greenlang-registry-mirror', NULL, NULL, NULL, part.relname, NULL,
                                 'retention', jsonb_build_object('retentionDays', retention_days), NULL,
                                 'expired', format('partition %s older than %s days dropped', part.relname,
                                                   retention_days));
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

REVOKE ALL ON audit_events, audit_anchors FROM PUBLIC;
GRANT SELECT ON audit_events, audit_anchors TO greenlang_app;
GRANT EXECUTE ON FUNCTION audit_append(timestamptz, text, text, text, text, text, uuid, text, jsonb, text, text,
                                       text), audit_verify(), audit_expire(integer) TO greenlang_app;
