-- When a queued job may next be pushed to the queue: now for a new upload (after a short
-- grace that lets the API push it itself), later for a transient error's retry (backoff).
-- The reconciler pushes queued jobs whose time has come and that are not on the queue yet.
ALTER TABLE jobs ADD COLUMN run_after timestamptz NOT NULL DEFAULT now();

-- Transient errors met so far, counted apart from crash recoveries: the retry budget.
ALTER TABLE jobs ADD COLUMN error_retries integer NOT NULL DEFAULT 0;

-- The reconciler's scan: queued jobs not yet pushed, oldest due first.
CREATE INDEX jobs_due ON jobs (run_after) WHERE state = 'queued' AND enqueued_at IS NULL;

-- Uploads being streamed to the object store, before their job row exists. The job's row
-- and the removal of this one commit together; a row left here by an API that died
-- mid-upload names objects with no job, which the reconciler deletes after a while, so
-- there is never an upload without a job.
CREATE TABLE pending_uploads (
    job_id      uuid PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now()
);
