-- Every row of the all-day path totals and of the client-aggregated paths carries the
-- number of the write that last changed it, from one sequence. A process that holds a
-- workspace's totals as of number N then reads only the rows changed after N, not
-- every path again. Writes of one workspace are serialized by its write lock and take
-- their numbers after taking it, so within a workspace numbers grow in commit order:
-- a reader that has seen N has seen every row numbered N or less.
--
-- A path whose journeys are all replaced or deleted keeps its totals row at zero (with
-- the number of that write) instead of losing it, so that readers holding it learn of
-- the change; every read of totals leaves zero rows out.
CREATE SEQUENCE totals_changes;

ALTER TABLE path_totals ADD COLUMN changed bigint;
UPDATE path_totals SET changed = nextval('totals_changes');
ALTER TABLE path_totals
    ALTER COLUMN changed SET NOT NULL,
    ALTER COLUMN changed SET DEFAULT nextval('totals_changes');
CREATE INDEX path_totals_changed_idx ON path_totals (workspace_id, changed);

ALTER TABLE aggregated_paths ADD COLUMN changed bigint;
UPDATE aggregated_paths SET changed = nextval('totals_changes');
ALTER TABLE aggregated_paths
    ALTER COLUMN changed SET NOT NULL,
    ALTER COLUMN changed SET DEFAULT nextval('totals_changes');
CREATE INDEX aggregated_paths_changed_idx ON aggregated_paths (workspace_id, changed);
