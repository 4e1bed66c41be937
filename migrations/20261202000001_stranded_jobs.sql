-- The reconciler also pushes queued jobs that were pushed but never claimed (their ticket
-- was lost in Redis): find them by when they were pushed without scanning every job.
CREATE INDEX jobs_pushed_unclaimed ON jobs (enqueued_at) WHERE state = 'queued' AND enqueued_at IS NOT NULL;
