-- journeys and path_rollups take millions of rows per bulk load. A foreign key checks
-- the workspace once per row (an index probe and a row lock each: about a sixth of the
-- server's work in a bulk load). Every write to these tables runs in a transaction
-- that first locks its workspace row (FOR KEY SHARE, as the key check would) and fails
-- when the workspace is missing, so the check is made once per write instead, and a
-- deleted workspace still takes its journeys and rollups with it.
ALTER TABLE journeys DROP CONSTRAINT journeys_workspace_id_fkey;
ALTER TABLE path_rollups DROP CONSTRAINT path_rollups_workspace_id_fkey;

CREATE FUNCTION delete_workspace_journeys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM path_rollups WHERE workspace_id = OLD.workspace_id;
    DELETE FROM journeys WHERE workspace_id = OLD.workspace_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER workspaces_delete_journeys BEFORE DELETE ON workspaces
    FOR EACH ROW EXECUTE FUNCTION delete_workspace_journeys();
