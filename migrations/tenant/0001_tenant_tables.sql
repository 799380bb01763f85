-- Tables of one organization, created in its own `org_<code>` schema (the
-- runner sets search_path). Every table carries organization_id and is
-- guarded by row-level security, forced so that even the owner is filtered;
-- the application role `cg_app` neither owns these tables nor bypasses RLS.
--
-- Settings read by the policies are set per transaction with SET LOCAL:
--   app.org_id   the organization of the call
--   app.user_id  the calling user, when a person calls
--   app.role     the caller's role; members see only their own records
-- An unset or empty setting matches nothing.

CREATE TABLE properties (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    display_name    text NOT NULL,
    address_line1   text NOT NULL,
    address_line2   text NOT NULL DEFAULT '',
    city            text NOT NULL,
    state           char(2) NOT NULL,
    postal_code     text NOT NULL,
    property_type   text NOT NULL,
    value_amount    numeric(14, 2),
    value_currency  text,
    year_built      integer,
    owner_user_id   uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX properties_org_id ON properties (organization_id, id DESC);

CREATE TABLE policies (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL,
    property_id       uuid NOT NULL REFERENCES properties (id),
    policy_number     text NOT NULL,
    carrier           text NOT NULL,
    coverage_amount   numeric(14, 2) NOT NULL,
    deductible_amount numeric(14, 2) NOT NULL,
    currency_code     text NOT NULL DEFAULT 'USD',
    effective_at      timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'active',
    owner_user_id     uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, policy_number)
);
CREATE INDEX policies_property ON policies (property_id);

CREATE TABLE claims (
    id                     uuid PRIMARY KEY,
    organization_id        uuid NOT NULL,
    property_id            uuid NOT NULL REFERENCES properties (id),
    policy_id              uuid REFERENCES policies (id),
    claim_number           text NOT NULL,
    status                 text NOT NULL DEFAULT 'draft',
    loss_type              text NOT NULL,
    loss_at                timestamptz NOT NULL,
    description            text NOT NULL DEFAULT '',
    claimed_amount         numeric(14, 2) NOT NULL,
    approved_amount        numeric(14, 2),
    currency_code          text NOT NULL DEFAULT 'USD',
    owner_user_id          uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, claim_number)
);
CREATE INDEX claims_property ON claims (property_id);

CREATE TABLE documents (
    id                  uuid PRIMARY KEY,
    organization_id     uuid NOT NULL,
    claim_id            uuid NOT NULL REFERENCES claims (id),
    file_name           text NOT NULL,
    content_type        text NOT NULL,
    size_bytes          bigint NOT NULL CHECK (size_bytes >= 0),
    sha256              text NOT NULL,
    storage_key         text NOT NULL,
    owner_user_id       uuid,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_claim ON documents (claim_id);

CREATE TABLE ai_usage_log (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    feature         text NOT NULL,
    model           text NOT NULL,
    input_tokens    bigint NOT NULL DEFAULT 0,
    output_tokens   bigint NOT NULL DEFAULT 0,
    claim_id        uuid REFERENCES claims (id),
    owner_user_id   uuid,
    created_at      timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['properties', 'policies', 'claims', 'documents', 'ai_usage_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        -- The organization boundary. `(SELECT ...)` makes the setting an
        -- init-plan evaluated once per statement, not once per row.
        EXECUTE format($p$
            CREATE POLICY organization_isolation ON %I
            USING (organization_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid))
            WITH CHECK (organization_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid))
        $p$, t);
        -- Members reach only their own records; other roles the whole organization.
        EXECUTE format($p$
            CREATE POLICY member_ownership ON %I AS RESTRICTIVE
            USING ((SELECT coalesce(current_setting('app.role', true), '')) <> 'member'
                   OR owner_user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid))
            WITH CHECK ((SELECT coalesce(current_setting('app.role', true), '')) <> 'member'
                   OR owner_user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid))
        $p$, t);
    END LOOP;
END
$$;
