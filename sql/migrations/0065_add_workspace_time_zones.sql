-- Each workspace names the IANA time zone its days are counted in (conversion dates,
-- rollup days, date ranges). It lives on the workspace row, which every write already
-- locks (lock_workspace_row), so a write reads the zone it formats days in under its
-- write lock, in the same statement, and a zone change (which takes that lock) can
-- never interleave with a write that used the old zone. Existing workspaces were
-- counted in UTC.
ALTER TABLE workspaces ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
