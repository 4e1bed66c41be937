-- Jobs, their event log and email send intents: the service's source of truth.
--
-- Redis only says "job X is ready"; everything a worker or the API needs to know about a
-- job is here. Workers write only under the lease they hold (`WHERE id = $1 AND
-- lease_token = $2`), so a worker whose lease lapsed cannot overwrite a newer attempt.

CREATE TABLE jobs (
    id                 uuid PRIMARY KEY,
    -- queued: waiting for a worker; running: leased by one; done, failed, cancelled: final.
    state              text NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    -- The stage running or last run: upload, decode, transcribe, summarize, render, notify.
    stage              text NOT NULL DEFAULT 'upload',
    -- Progress of the whole job, 0 to 100.
    percent            real NOT NULL DEFAULT 0 CHECK (percent >= 0 AND percent <= 100),
    -- What the job is doing, for people ("transcribing 12:30 of 58:00").
    message            text NOT NULL DEFAULT '',
    -- Why it failed, in plain words, with a stable code first ("not_media: ...").
    failure_reason     text,
    -- Times a worker took the job (error retries and crash recoveries alike).
    attempts           integer NOT NULL DEFAULT 0,
    -- Times a worker holding the job vanished (lease lapsed): the crash budget counts these.
    crash_count        integer NOT NULL DEFAULT 0,
    -- The current lease: who holds the job and until when.
    lease_token        uuid,
    lease_expires_at   timestamptz,
    worker_name        text,
    -- The upload: a server-generated object key, never derived from the file name.
    source_key         text NOT NULL,
    -- The file name as the person knows it, sanitised (no path, no control characters).
    original_filename  text NOT NULL,
    content_type       text NOT NULL,
    size_bytes         bigint NOT NULL CHECK (size_bytes >= 0),
    media_duration     double precision,
    language           text,
    title              text,
    notify_email       text,
    -- Options chosen at upload or reprocessing (summarizer, model, ...).
    options            jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Artifact name -> object key, for each stage output stored so far.
    artifacts          jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- An upload's Idempotency-Key: the same key gives the same job.
    idempotency_key    text UNIQUE,
    -- Set once the job is on the queue; the reconciler pushes rows where it is still null.
    enqueued_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);

-- Listing by state and age (the API's list, metrics, the reconciler).
CREATE INDEX jobs_state_created_at ON jobs (state, created_at);
-- Leases that lapsed (crash recovery).
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';

-- Append-only log of what happened to each job; feeds the progress stream and the history
-- of reprocessing.
CREATE TABLE job_events (
    id        bigserial PRIMARY KEY,
    job_id    uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    stage     text NOT NULL,
    percent   real NOT NULL,
    message   text NOT NULL DEFAULT ''
);

CREATE INDEX job_events_job_id ON job_events (job_id, id);

-- One row per email a job should send. The Message-ID is fixed when the intent is made, so
-- a resend after a crash is recognisable; the row is marked sent only once the server has
-- accepted the message.
CREATE TABLE email_intents (
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('minutes', 'failure')),
    message_id  text NOT NULL UNIQUE,
    recipient   text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    PRIMARY KEY (job_id, kind)
);
