-- Versions of a job's results. Every run that produces outputs (the first, each reprocess)
-- builds one version; the job points to the version people download (`current_version`)
-- and to the one a run is building (`building_version`). A version becomes current only in
-- the transaction that ends its run successfully, so a failed or cancelled reprocess leaves
-- the minutes a person already has in place.
CREATE TABLE job_versions (
    job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number          integer NOT NULL CHECK (number >= 1),
    -- The first stage the run made anew (decode for a first run).
    from_stage      text NOT NULL,
    -- The options the run was asked with (the reprocess patch; the upload's for the first).
    options         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Who asked for it (the uploader for the first run).
    requested_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    -- building: a run is making it; ready: complete; failed or cancelled: its run ended
    -- without a result (failure_reason says why).
    outcome         text NOT NULL DEFAULT 'building'
                    CHECK (outcome IN ('building', 'ready', 'failed', 'cancelled')),
    failure_reason  text,
    -- Artifact name -> object key. Keys of artifacts a version did not rebuild point to
    -- the objects of the version it started from (shared, not copied).
    artifacts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (job_id, number)
);

-- jobs.artifacts now holds the current version's artifacts (what downloads serve); a run
-- writes into its building version's row. reprocess_failure says why the last reprocess
-- ended without a result while an earlier version stays current.
ALTER TABLE jobs
    ADD COLUMN current_version integer,
    ADD COLUMN building_version integer,
    ADD COLUMN reprocess_failure text;

-- Every existing job becomes version 1 with what it has: a finished one current, any
-- other one building (a retry resumes it).
INSERT INTO job_versions (job_id, number, from_stage, options, requested_by, outcome,
                          failure_reason, artifacts, created_at, finished_at)
SELECT id, 1, 'decode', options, owner_id,
       CASE state WHEN 'done' THEN 'ready' WHEN 'failed' THEN 'failed'
                  WHEN 'cancelled' THEN 'cancelled' ELSE 'building' END,
       failure_reason, artifacts, created_at, finished_at
FROM jobs;
UPDATE jobs SET current_version = CASE WHEN state = 'done' THEN 1 END,
                building_version = CASE WHEN state = 'done' THEN NULL ELSE 1 END;

-- Emails are sent per version: a reprocess that asks for mail sends the new version's
-- minutes under a Message-ID of its own; the first run's intents are version 1's.
ALTER TABLE email_intents ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE email_intents DROP CONSTRAINT email_intents_pkey;
ALTER TABLE email_intents ADD PRIMARY KEY (job_id, kind, version);
