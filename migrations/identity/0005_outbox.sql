-- Messages to people (invitations today), written in the same transaction
-- as what causes them and delivered by a worker, so a crash between the
-- two loses nothing. Bodies carry single-use links, so they are sealed with
-- the secrets key and erased once delivered. Runs with search_path = identity.

CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    organization_id uuid,
    kind            text NOT NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body_enc        bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
