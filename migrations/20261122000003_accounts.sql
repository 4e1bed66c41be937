-- Accounts: users, their web sessions and API tokens, the login throttle, and the server's
-- signing key. Every job belongs to the user who uploaded it.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    -- Unique without regard to case (see the index); kept as typed.
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name   text NOT NULL,
    -- An argon2id PHC string; the password itself is never stored.
    password_hash  text NOT NULL,
    role           text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    -- A disabled user cannot sign in; their sessions and tokens stop working.
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

CREATE UNIQUE INDEX users_email ON users (lower(email));

-- A web session: the cookie holds a random secret, this table only its SHA-256.
CREATE TABLE sessions (
    token_hash    bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The form token of this session (CSRF): every form and every cookie-authenticated
    -- API write must carry it.
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens: shown once, stored as SHA-256 of the secret; revoked ones stay for the record.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    -- The first characters of the token, so a person can tell their tokens apart.
    prefix        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

-- Failed sign-ins, by account (lower-cased email, whether it exists or not) and by client
-- address: the login throttle counts these over a window.
CREATE TABLE login_failures (
    id    bigserial PRIMARY KEY,
    key   text NOT NULL,
    at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_failures_key ON login_failures (key, at);

-- Server secrets shared by every API process (the download-link signing key), made on
-- first start unless the settings give one.
CREATE TABLE server_secrets (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);

-- Ownership. Jobs made before accounts existed have no owner: only admins see them.
ALTER TABLE jobs ADD COLUMN owner_id uuid REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX jobs_owner_created_at ON jobs (owner_id, created_at);
CREATE INDEX jobs_owner_running ON jobs (owner_id) WHERE state = 'running';

-- Uploads in progress count toward their owner's upload rate.
ALTER TABLE pending_uploads ADD COLUMN owner_id uuid REFERENCES users (id) ON DELETE CASCADE;
