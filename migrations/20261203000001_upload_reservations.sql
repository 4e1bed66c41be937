-- What an upload in progress holds of its owner's storage quota: the size its request
-- declared, or all that was left when it declared none. Reserved in the transaction that
-- counts the owner's uploads, so parallel uploads cannot together pass the rate or the
-- quota.
ALTER TABLE pending_uploads ADD COLUMN reserved_bytes bigint NOT NULL DEFAULT 0;
