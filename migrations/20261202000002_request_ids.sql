-- The id of the HTTP request that made the job, so the worker's log lines for the job
-- carry the same id as the API's for the upload.
ALTER TABLE jobs ADD COLUMN request_id text;
