-- People, their membership of organizations, invitations, the keys that
-- sign access tokens, and refresh tokens. Secrets are stored hashed
-- (tokens, passwords) or encrypted with the deployment's secrets key
-- (private signing keys). Runs with search_path = identity.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Lower-cased; one person, one account, across organizations.
    email         text NOT NULL UNIQUE CHECK (email = lower(email)),
    display_name  text NOT NULL DEFAULT '',
    -- argon2id PHC string; NULL for people who only sign in through SSO.
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    organization_id uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (id),
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    status          text NOT NULL CHECK (status IN ('invited', 'active', 'suspended', 'removed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invitations (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    email           text NOT NULL CHECK (email = lower(email)),
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    -- SHA-256 of the single-use token; the token itself is never stored.
    token_hash      bytea NOT NULL UNIQUE,
    invited_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX invitations_organization ON invitations (organization_id, created_at DESC);
-- At most one open invitation per address and organization.
CREATE UNIQUE INDEX invitations_open ON invitations (organization_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

CREATE TABLE signing_keys (
    kid             text PRIMARY KEY,
    -- Ed25519 seed, AES-256-GCM encrypted with the secrets key.
    private_key_enc bytea NOT NULL,
    public_key      bytea NOT NULL CHECK (length(public_key) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Retired keys still verify until their tokens have expired; they sign nothing.
    retired_at      timestamptz
);

-- Failed sign-ins, per account and per source address, for throttling.
CREATE TABLE login_failures (
    subject       text PRIMARY KEY,
    failures      integer NOT NULL,
    window_start  timestamptz NOT NULL,
    locked_until  timestamptz
);
