-- The organization's audit trail: an append-only, hash-chained log (see
-- docs/audit.md), its chain head, and signed checkpoints. Writers append in
-- the same transaction as the change they record.

CREATE TABLE audit_log (
    sequence        bigint PRIMARY KEY CHECK (sequence > 0),
    organization_id uuid NOT NULL,
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
    -- Canonical JSON exactly as hashed (text, not jsonb, which would
    -- re-encode numbers and reorder keys).
    summary         text NOT NULL,
    previous_hash   bytea NOT NULL CHECK (length(previous_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at);
CREATE INDEX audit_log_action ON audit_log (action text_pattern_ops);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id);

-- One row: the newest entry. Appends lock it, so one organization has one
-- linear chain however many writers there are.
CREATE TABLE audit_head (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    organization_id uuid NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    hash            bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE audit_checkpoints (
    sequence        bigint PRIMARY KEY,
    organization_id uuid NOT NULL,
    head_hash       bytea NOT NULL CHECK (length(head_hash) = 32),
    signed_at       timestamptz NOT NULL,
    key_id          text NOT NULL,
    signature       bytea NOT NULL CHECK (length(signature) = 64)
);

-- Entries can only be added. The retention role may delete entries that a
-- signed checkpoint covers; nobody may update them or truncate the table.
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

-- The head only moves forward.
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

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_log', 'audit_head', 'audit_checkpoints'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$
            CREATE POLICY organization_isolation ON %I
            USING (organization_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid))
            WITH CHECK (organization_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid))
        $p$, t);
    END LOOP;
END
$$;
