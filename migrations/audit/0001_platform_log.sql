-- The platform's own audit trail, for events that belong to no
-- organization (operators' platform calls, unauthenticated calls, unknown
-- tenants). Same shape and guarantees as each tenant's `audit_log`, with
-- a NULL organization. Runs with search_path = audit.

CREATE TABLE audit_log (
    sequence        bigint PRIMARY KEY CHECK (sequence > 0),
    organization_id uuid CHECK (organization_id IS NULL),
    occurred_at     timestamptz NOT NULL,
    actor_kind      text NOT NULL,
    actor_id        text NOT NULL,
    action          text NOT NULL,
    resource_type   text NOT NULL,
    resource_id     text NOT NULL,
    outcome         text NOT NULL,
    request_id      text NOT NULL,
    trace_id        text NOT NULL,
    source_ip       text NOT NULL,
    user_agent      text NOT NULL,
    summary         text NOT NULL,
    previous_hash   bytea NOT NULL CHECK (length(previous_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at);
CREATE INDEX audit_log_action ON audit_log (action text_pattern_ops);

CREATE TABLE audit_head (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    organization_id uuid CHECK (organization_id IS NULL),
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    hash            bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE audit_checkpoints (
    sequence        bigint PRIMARY KEY,
    organization_id uuid CHECK (organization_id IS NULL),
    head_hash       bytea NOT NULL CHECK (length(head_hash) = 32),
    signed_at       timestamptz NOT NULL,
    key_id          text NOT NULL,
    signature       bytea NOT NULL CHECK (length(signature) = 64)
);

CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    covered bigint;
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'cg_audit_retention' THEN
        EXECUTE format('SELECT coalesce(max(sequence), 0) FROM %I.audit_checkpoints', TG_TABLE_SCHEMA)
            INTO covered;
        IF OLD.sequence <= covered THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit entry % is not covered by a signed checkpoint', OLD.sequence
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sequence <= OLD.sequence THEN
        RAISE EXCEPTION 'the audit head only moves forward' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_no_rewind BEFORE UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
