-- The audit chain, version 2: arrival order, a canonical row encoding, expiry that cannot be
-- shortened, TRUNCATE refused, and verification against an anchor kept outside Postgres.
--
-- * Rows are appended in arrival order: audit_append() takes `at` from the clock (never earlier
--   than the previous row's) and numbers rows without gaps, so every partition holds a contiguous
--   range of ids and a missing id is a deleted row. The event's own time is `occurred_at`.
-- * Rows written before this migration keep `digest_version` 1 and verify under their old digest
--   (audit_digest); they are not re-chained, since re-hashing them would also bless any change
--   made to them before now. New rows use digest 2 (audit_digest_v2), linked to the last old row.
-- * audit_expire() drops only whole partitions past a retention fixed here, oldest first, and only
--   while they hold the oldest ids; the last dropped row stays in audit_anchors and a retention row
--   in the chain records it, so verification continues from it.

ALTER TABLE audit_events ADD COLUMN occurred_at timestamptz,
                         ADD COLUMN digest_version smallint NOT NULL DEFAULT 1;
ALTER TABLE audit_events ALTER COLUMN digest_version DROP DEFAULT;

-- One field of the encoding: 0x00 for NULL, else 0x01, the UTF-8 length as 4 bytes, the bytes.
CREATE FUNCTION audit_field(value text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(value, 'UTF8'))) || convert_to(value, 'UTF8')
           END
$$;

CREATE FUNCTION audit_time(moment timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Every column but the hash itself, in this order; docs/mirror.md describes it.
CREATE FUNCTION audit_digest_v2(e audit_events) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to('greenlang-audit/v2', 'UTF8')
        || audit_field(e.digest_version::text) || audit_field(e.id::text) || audit_field(audit_time(e.at))
        || audit_field(audit_time(e.occurred_at)) || audit_field(e.actor) || audit_field(e.tenant)
        || audit_field(e.kind) || audit_field(e.namespace) || audit_field(e.name) || audit_field(e.uid::text)
        || audit_field(e.operation) || audit_field(e.change::text) || audit_field(e.request_uid)
        || audit_field(e.decision) || audit_field(e.reason) || audit_field(e.prev_hash)), 'hex')
$$;

CREATE FUNCTION audit_row_hash(e audit_events) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE e.digest_version WHEN 1 THEN audit_digest(e) WHEN 2 THEN audit_digest_v2(e) END
$$;

-- TRUNCATE skips row triggers: refuse it on the table and on every partition (statement triggers
-- are not inherited). A superuser can still disable triggers; verification detects what follows.
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
DO $$
DECLARE part record;
BEGIN
    FOR part IN SELECT inhrelid::regclass AS name FROM pg_inherits WHERE inhparent = 'audit_events'::regclass LOOP
        EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', part.name);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION audit_ensure_partition(moment timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', moment AT TIME ZONE 'UTC')::date;
    partition text := format('audit_events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    IF to_regclass(partition) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                       partition, first_day::timestamp AT TIME ZONE 'UTC',
                       (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', partition);
    END IF;
END $$;

-- The newest row (or, when expiry left none, the last expired one; 0 and 'genesis' when empty).
CREATE FUNCTION audit_head(OUT id bigint, OUT hash text, OUT at timestamptz) LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = public AS $$
BEGIN
    SELECT e.id, e.hash, e.at INTO id, hash, at FROM audit_events e ORDER BY e.id DESC LIMIT 1;
    IF id IS NULL THEN
        SELECT a.last_id, a.last_hash, NULL INTO id, hash, at FROM audit_anchors a ORDER BY a.last_id DESC LIMIT 1;
    END IF;
    id := coalesce(id, 0);
    hash := coalesce(hash, 'genesis');
END $$;

-- Same arguments as before, so callers keep working; the first is now only the event's own time.
DROP FUNCTION audit_append(timestamptz, text, text, text, text, text, uuid, text, jsonb, text, text, text);
CREATE FUNCTION audit_append(p_occurred_at timestamptz, p_actor text, p_tenant text, p_kind text, p_namespace text,
                             p_name text, p_uid uuid, p_operation text, p_change jsonb, p_request_uid text,
                             p_decision text, p_reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head record;
    r audit_events;
BEGIN
    -- The next id is read after taking the lock; an older snapshot would hand out an id twice.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit_append needs READ COMMITTED isolation, not %', current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM pg_advisory_xact_lock(7412002);  -- one writer at a time keeps the chain linear
    SELECT * INTO head FROM audit_head();
    r.id := head.id + 1;
    r.at := greatest(clock_timestamp(), head.at);  -- a clock stepping back must not reorder partitions
    r.occurred_at := p_occurred_at;
    r.actor := p_actor;
    r.tenant := coalesce(p_tenant, tenant_of_namespace(p_namespace));
    r.kind := p_kind;
    r.namespace := p_namespace;
    r.name := p_name;
    r.uid := p_uid;
    r.operation := p_operation;
    r.change := p_change;
    r.request_uid := p_request_uid;
    r.decision := p_decision;
    r.reason := p_reason;
    r.digest_version := 2;
    r.prev_hash := head.hash;
    r.hash := audit_digest_v2(r);
    PERFORM audit_ensure_partition(r.at);
    INSERT INTO audit_events SELECT r.*;
    RETURN r.id;
END $$;
DROP SEQUENCE audit_events_id;  -- ids are now the previous id + 1, taken under the lock

CREATE FUNCTION audit_rows(first bigint, last bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN first = last THEN format('row %s', first) ELSE format('rows %s to %s', first, last) END
$$;

-- Problems in the rows after (after_id, after_hash), in id order, and against the anchored head
-- (anchor_id, anchor_hash) when one is given. Version-2 rows must follow without a gap.
CREATE FUNCTION audit_check_chain(after_id bigint, after_hash text, anchor_id bigint, anchor_hash text)
RETURNS TABLE (id bigint, problem text) LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    r audit_events;
    previous_id bigint := after_id;
    previous_hash text := after_hash;
    previous_version smallint := 0;
    anchor_checked boolean := anchor_id IS NULL OR anchor_id <= after_id;
BEGIN
    IF anchor_id IS NOT NULL AND anchor_id = after_id AND anchor_hash <> after_hash THEN
        id := anchor_id;
        problem := format('row %s differs from the anchored head (anchored hash %s)', anchor_id, anchor_hash);
        RETURN NEXT;
    END IF;
    FOR r IN SELECT * FROM audit_events e WHERE e.id > after_id ORDER BY e.id LOOP
        IF r.id = previous_id THEN
            id := r.id; problem := format('row %s appears more than once', r.id); RETURN NEXT;
        ELSIF r.digest_version >= 2 AND r.id <> previous_id + 1 THEN
            id := previous_id + 1;
            problem := format('%s missing: row %s follows row %s', audit_rows(previous_id + 1, r.id - 1), r.id,
                              previous_id);
            RETURN NEXT;
        ELSIF r.prev_hash IS DISTINCT FROM previous_hash THEN
            id := r.id; problem := 'chain broken: previous row missing or changed'; RETURN NEXT;
        END IF;
        IF r.digest_version < previous_version THEN
            id := r.id;
            problem := format('digest version %s after version %s: the row was relabelled', r.digest_version,
                              previous_version);
            RETURN NEXT;
        ELSIF audit_row_hash(r) IS DISTINCT FROM r.hash THEN
            id := r.id; problem := 'content changed: hash does not match the row'; RETURN NEXT;
        END IF;
        IF r.id = anchor_id THEN
            anchor_checked := true;
            IF r.hash <> anchor_hash THEN
                id := r.id;
                problem := format('row %s differs from the anchored head (anchored hash %s, row hash %s)', r.id,
                                  anchor_hash, r.hash);
                RETURN NEXT;
            END IF;
        END IF;
        previous_id := r.id;
        previous_hash := r.hash;
        previous_version := r.digest_version;
    END LOOP;
    IF NOT anchor_checked THEN
        IF anchor_id > previous_id THEN
            id := previous_id + 1;
            problem := format('%s missing: the anchored head is row %s, the table ends at row %s',
                              audit_rows(previous_id + 1, anchor_id), anchor_id, previous_id);
        ELSE
            id := anchor_id;
            problem := format('row %s missing: it is the anchored head', anchor_id);
        END IF;
        RETURN NEXT;
    END IF;
END $$;

-- The whole trail: from the last expired row (confirmed by its retention row) or from genesis.
DROP FUNCTION audit_verify();
CREATE FUNCTION audit_verify(anchor_id bigint DEFAULT NULL, anchor_hash text DEFAULT NULL)
RETURNS TABLE (id bigint, problem text) LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    base record;
BEGIN
    SELECT a.last_id, a.last_hash INTO base FROM audit_anchors a ORDER BY a.last_id DESC LIMIT 1;
    IF base.last_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM audit_events e WHERE e.operation = 'retention' AND e.id > base.last_id
              AND e.change ->> 'lastId' = base.last_id::text AND e.change ->> 'lastHash' = base.last_hash) THEN
        id := NULL;  -- not a row of its own: forged, or its retention row went with other rows
        problem := format('the trail starts after row %s, but no retention row in the chain records that rows up to '
                          '%s expired', base.last_id, base.last_id);
        RETURN NEXT;
    END IF;
    RETURN QUERY SELECT c.id, c.problem FROM audit_check_chain(coalesce(base.last_id, 0),
                                                               coalesce(base.last_hash, 'genesis'), anchor_id,
                                                               anchor_hash) c ORDER BY c.id;
END $$;

-- Whether the table still extends an anchored head: the anchored row is there, unchanged, and
-- the rows after it follow on. The mirror moves its anchor only forward from there.
CREATE FUNCTION audit_extends(anchor_id bigint, anchor_hash text)
RETURNS TABLE (id bigint, problem text) LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    base record;
    anchored audit_events;
BEGIN
    SELECT a.last_id, a.last_hash INTO base FROM audit_anchors a ORDER BY a.last_id DESC LIMIT 1;
    IF anchor_id <= coalesce(base.last_id, 0) THEN
        -- Expired since (or genesis): only the last expired row can still be compared.
        IF anchor_id = coalesce(base.last_id, 0) AND anchor_hash <> coalesce(base.last_hash, 'genesis') THEN
            id := anchor_id;
            problem := format('row %s differs from the anchored head (anchored hash %s)', anchor_id, anchor_hash);
            RETURN NEXT;
        END IF;
        RETURN QUERY SELECT * FROM audit_check_chain(coalesce(base.last_id, 0), coalesce(base.last_hash, 'genesis'),
                                                    NULL, NULL);
        RETURN;
    END IF;
    SELECT * INTO anchored FROM audit_events e WHERE e.id = anchor_id;
    id := anchor_id;
    IF anchored.id IS NULL THEN
        problem := format('row %s missing: it is the anchored head', anchor_id);
        RETURN NEXT;
    ELSIF anchored.hash <> anchor_hash THEN
        problem := format('row %s differs from the anchored head (anchored hash %s, row hash %s)', anchor_id,
                          anchor_hash, anchored.hash);
        RETURN NEXT;
    ELSIF audit_row_hash(anchored) IS DISTINCT FROM anchored.hash THEN
        problem := 'content changed: hash does not match the row';
        RETURN NEXT;
    END IF;
    RETURN QUERY SELECT * FROM audit_check_chain(anchor_id, anchor_hash, NULL, NULL);
END $$;

-- Drop whole months past the retention, oldest first, while they hold the oldest rows.
DROP FUNCTION audit_expire(integer);
CREATE FUNCTION audit_expire() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    retention constant integer := 2555;  -- days; fixed here so that no caller can shorten it
    part record;
    last record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7412002);
    FOR part IN
        SELECT c.oid, c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass ORDER BY upper
    LOOP
        EXIT WHEN part.upper >= now() - make_interval(days => retention);
        EXECUTE format('SELECT id, hash FROM %I ORDER BY id DESC LIMIT 1', part.relname) INTO last;
        IF last.id IS NOT NULL THEN
            -- Rows back-dated before version 2 can sit in an old month but in the middle of the chain.
            IF EXISTS (SELECT 1 FROM audit_events e WHERE e.id < last.id AND e.tableoid <> part.oid) THEN
                RAISE NOTICE 'audit partition % kept: newer partitions hold older rows', part.relname;
                EXIT;
            END IF;
            INSERT INTO audit_anchors (partition, last_id, last_hash) VALUES (part.relname, last.id, last.hash);
        END IF;
        EXECUTE format('ALTER TABLE audit_events DETACH PARTITION %I', part.relname);
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
        PERFORM audit_append(now(), 'greenlang-registry-mirror', NULL, NULL, NULL, part.relname, NULL, 'retention',
                             jsonb_build_object('partition', part.relname, 'retentionDays', retention,
                                                'lastId', last.id, 'lastHash', last.hash),
                             NULL, 'expired', format('partition %s older than %s days dropped', part.relname,
                                                     retention));
    END LOOP;
    RETURN dropped;
END $$;

-- Expiries done before this version recorded no lastId: record in the chain the row the trail now starts after.
DO $$
DECLARE base record;
BEGIN
    SELECT last_id, last_hash, partition INTO base FROM audit_anchors ORDER BY last_id DESC LIMIT 1;
    IF base.last_id IS NOT NULL THEN
        PERFORM audit_append(now(), 'greenlang-registry-mirror', NULL, NULL, NULL, base.partition, NULL, 'retention',
                             jsonb_build_object('partition', base.partition, 'lastId', base.last_id,
                                                'lastHash', base.last_hash, 'recordedBy', '0004_audit_chain'),
                             NULL, 'expired', 'expiry before the version 2 chain, recorded at the upgrade');
    END IF;
END $$;

REVOKE ALL ON FUNCTION audit_field(text), audit_time(timestamptz), audit_rows(bigint, bigint), audit_digest_v2(audit_events),
    audit_row_hash(audit_events), audit_head(), audit_append(timestamptz, text, text, text, text, text, uuid, text,
    jsonb, text, text, text), audit_check_chain(bigint, text, bigint, text), audit_verify(bigint, text),
    audit_extends(bigint, text), audit_expire() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_field(text), audit_time(timestamptz), audit_rows(bigint, bigint), audit_digest_v2(audit_events),
    audit_row_hash(audit_events), audit_head(), audit_append(timestamptz, text, text, text, text, text, uuid, text,
    jsonb, text, text, text), audit_check_chain(bigint, text, bigint, text), audit_verify(bigint, text),
    audit_extends(bigint, text), audit_expire() TO greenlang_app;
