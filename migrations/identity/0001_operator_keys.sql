-- Platform operator API keys. The secret is random (256 bits) and only its
-- SHA-256 is stored: a slow password hash adds nothing for a secret of that
-- entropy and would cost every request. Runs with search_path = identity.

CREATE TABLE operator_api_keys (
    id           uuid PRIMARY KEY,
    -- Visible part of the key, used to find the row: `cgo_<prefix>_<secret>`.
    key_prefix   text NOT NULL UNIQUE,
    secret_hash  bytea NOT NULL,
    label        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
