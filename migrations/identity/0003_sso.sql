-- OpenID Connect single sign-on per organization, and the sign-ins in
-- flight. The client secret and the PKCE verifiers are encrypted with the
-- deployment's secrets key (they must be read back); state and nonce are
-- only compared, so only their SHA-256 is stored. Runs with
-- search_path = identity.

CREATE TABLE sso_configurations (
    -- One configuration per organization (tenancy.organizations.id; like
    -- memberships, no foreign key across schemas).
    organization_id       uuid PRIMARY KEY,
    -- Exactly as configured: the ID token's `iss` must match it verbatim.
    issuer_url            text NOT NULL CHECK (issuer_url ~ '^https?://'),
    client_id             text NOT NULL CHECK (client_id <> ''),
    -- AES-256-GCM sealed with the secrets key (`SecretBox`).
    client_secret_enc     bytea NOT NULL,
    -- Lower-case DNS names; an e-mail address must end in `@` + one of them.
    allowed_email_domains text[] NOT NULL CHECK (cardinality(allowed_email_domains) > 0),
    -- Role of members provisioned just in time.
    default_role          text NOT NULL CHECK (default_role IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    -- The organization refuses password sign-in.
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One row per started sign-in: single use, ten minutes.
CREATE TABLE sso_logins (
    -- SHA-256 of the `state` sent to the provider; the state is never stored.
    state_hash        bytea PRIMARY KEY CHECK (length(state_hash) = 32),
    organization_id   uuid NOT NULL REFERENCES sso_configurations (organization_id) ON DELETE CASCADE,
    -- The issuer the sign-in started with: a configuration changed in between
    -- does not complete it.
    issuer_url        text NOT NULL,
    -- SHA-256 of the nonce; the ID token's `nonce` is hashed and compared.
    nonce_hash        bytea NOT NULL CHECK (length(nonce_hash) = 32),
    -- PKCE code verifier, sealed with the secrets key.
    pkce_verifier_enc bytea NOT NULL,
    redirect_uri      text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    consumed_at       timestamptz
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
CREATE INDEX sso_logins_organization ON sso_logins (organization_id);
