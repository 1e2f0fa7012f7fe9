-- Static hosting: the content hash of a version's static site bundle ([static] in the
-- manifest), stored in `artifacts` like the code; NULL for a version without one.
ALTER TABLE versions ADD COLUMN static_hash TEXT;
