-- Organization security settings, TOTP second factors, sign-in
-- challenges, refresh tokens and service-account API keys.
-- Runs with search_path = identity.

CREATE TABLE security_settings (
    organization_id uuid PRIMARY KEY,
    require_mfa     boolean NOT NULL DEFAULT false,
    require_sso     boolean NOT NULL DEFAULT false,
    -- CIDR ranges; empty allows every address.
    ip_allowlist    text[] NOT NULL DEFAULT '{}',
    session_minutes integer NOT NULL DEFAULT 43200 CHECK (session_minutes > 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The TOTP secret is sealed with the secrets key; it is confirmed by a
-- first valid code. The last accepted step refuses replays.
ALTER TABLE users
    ADD COLUMN totp_secret_enc   bytea,
    ADD COLUMN totp_confirmed_at timestamptz,
    ADD COLUMN totp_last_step    bigint;

CREATE TABLE recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id),
    position  integer NOT NULL,
    -- Salted SHA-256 (see crates/identity/src/mfa/recovery.rs).
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, position)
);

-- A password accepted, a second factor outstanding.
CREATE TABLE mfa_challenges (
    token_hash      bytea PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id),
    organization_id uuid NOT NULL,
    expires_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    consumed_at     timestamptz
);

-- Opaque refresh tokens, stored hashed, rotated on every use; a token used
-- twice revokes its whole family.
CREATE TABLE refresh_tokens (
    token_hash      bytea PRIMARY KEY,
    family_id       uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (id),
    organization_id uuid NOT NULL,
    amr             text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id, organization_id);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    -- Visible part of the key: `cgk_<prefix>_<secret>`.
    key_prefix      text NOT NULL UNIQUE,
    secret_hash     bytea NOT NULL,
    display_name    text NOT NULL,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX api_keys_organization ON api_keys (organization_id);
