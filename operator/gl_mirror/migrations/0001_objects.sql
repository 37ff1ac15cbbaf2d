-- Current state of every mirrored object, keyed by uid; deleted objects are kept and marked.
CREATE TABLE registry_objects (
    uid              uuid PRIMARY KEY,
    kind             text        NOT NULL,
    namespace        text        NOT NULL DEFAULT '',
    name             text        NOT NULL,
    resource_version bigint      NOT NULL,
    body             jsonb       NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    deleted_at       timestamptz,
    first_seen       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_objects_by_name ON registry_objects (kind, namespace, name);

-- Append-only history: one row per observed version of an object. Replays collide on the key.
CREATE TABLE registry_object_history (
    uid              uuid        NOT NULL,
    resource_version bigint      NOT NULL,
    event_type       text        NOT NULL CHECK (event_type IN ('ADDED', 'MODIFIED', 'DELETED', 'RELISTED', 'VANISHED')),
    kind             text        NOT NULL,
    namespace        text        NOT NULL DEFAULT '',
    name             text        NOT NULL,
    body             jsonb,
    observed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (uid, resource_version, event_type)
);

-- Where each watch resumes after a restart.
CREATE TABLE watch_bookmarks (
    kind             text PRIMARY KEY,
    resource_version bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
