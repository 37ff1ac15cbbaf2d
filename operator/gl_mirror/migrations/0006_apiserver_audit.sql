-- Rows from the API server's audit log keep its auditID in request_uid (watch-derived rows leave
-- it NULL). The mirror looks them up before appending, so a batch the API server sends again adds
-- no row twice; the index keeps that look-up cheap. Created on the parent, it covers every
-- partition, present and future.
CREATE INDEX audit_events_by_request ON audit_events (request_uid) WHERE request_uid IS NOT NULL;
