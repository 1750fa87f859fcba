-- A per-workspace data version, bumped in the same transaction as every write that
-- can change an attribution result, so a cached run is reused only on unchanged data.
-- Statement-level triggers with transition tables cost one small statement per write
-- statement, not one per row. New journeys always move path_rollups, so journeys
-- need triggers only for replacements (UPDATE) and deletions: an INSERT trigger there
-- would copy every bulk-loaded journey into a transition table for nothing.
CREATE TABLE workspace_data_versions (
    workspace_id bigint PRIMARY KEY REFERENCES workspaces ON DELETE CASCADE,
    version bigint NOT NULL DEFAULT 1,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION bump_data_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO workspace_data_versions AS v (workspace_id)
    SELECT DISTINCT c.workspace_id FROM changed_rows c
    -- rows removed by deleting their workspace need no version
    WHERE EXISTS (SELECT 1 FROM workspaces w WHERE w.workspace_id = c.workspace_id)
    ORDER BY c.workspace_id  -- a fixed lock order between concurrent writers
    ON CONFLICT (workspace_id) DO UPDATE SET version = v.version + 1, changed_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER path_rollups_insert_version AFTER INSERT ON path_rollups
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER path_rollups_update_version AFTER UPDATE ON path_rollups
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER path_rollups_delete_version AFTER DELETE ON path_rollups
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

CREATE TRIGGER aggregated_paths_insert_version AFTER INSERT ON aggregated_paths
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER aggregated_paths_update_version AFTER UPDATE ON aggregated_paths
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER aggregated_paths_delete_version AFTER DELETE ON aggregated_paths
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

CREATE TRIGGER journeys_update_version AFTER UPDATE ON journeys
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER journeys_delete_version AFTER DELETE ON journeys
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- Stage names and order appear in every table.
CREATE TRIGGER stages_insert_version AFTER INSERT ON stages
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER stages_update_version AFTER UPDATE ON stages
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER stages_delete_version AFTER DELETE ON stages
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
