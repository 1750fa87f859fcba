-- Read-only database access for BI tools, one login role per workspace.
-- Every BI login role is a member of the group role pathcredit_bi, which may only
-- SELECT the run tables and the versioned views (sql/views/). Row-level security on
-- the run tables lets a role see the rows of the workspace recorded for it in
-- bi_roles, keyed by current_user, which a session cannot change (a setting such as
-- SET pathcredit.workspace_id could be changed by the BI user). The application's own
-- role owns the tables and is not subject to these policies.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pathcredit_bi') THEN
        CREATE ROLE pathcredit_bi NOLOGIN;
    END IF;
END
$$;

CREATE TABLE bi_roles (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    role_name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, role_name)
);

ALTER TABLE bi_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_roles_own ON bi_roles FOR SELECT USING (role_name = current_user);

ALTER TABLE attribution_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY attribution_runs_bi ON attribution_runs FOR SELECT
    USING (workspace_id IN (SELECT b.workspace_id FROM bi_roles b WHERE b.role_name = current_user));

ALTER TABLE attribution_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY attribution_rows_bi ON attribution_rows FOR SELECT
    USING (workspace_id IN (SELECT b.workspace_id FROM bi_roles b WHERE b.role_name = current_user));

GRANT SELECT ON bi_roles, attribution_runs, attribution_rows TO pathcredit_bi;

-- create_bi_role(workspace_id, role_name, password): a login role that reads one
-- workspace's runs, read-only by default and by privilege. Run it as the
-- application's role (it needs CREATEROLE); the role may connect to this database.
CREATE FUNCTION create_bi_role(workspace bigint, role_name text, password text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.workspace_id = workspace) THEN
        RAISE EXCEPTION 'no workspace %', workspace USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE pathcredit_bi', role_name, password);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', role_name);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role_name);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), role_name);
    INSERT INTO bi_roles (workspace_id, role_name) VALUES (workspace, role_name);
    RETURN role_name;
END
$$;

-- drop_bi_role(role_name): revoke a BI role's access to this database and drop it.
CREATE FUNCTION drop_bi_role(role_name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bi_roles b WHERE b.role_name = drop_bi_role.role_name;
    EXECUTE format('DROP OWNED BY %I', role_name);
    EXECUTE format('DROP ROLE %I', role_name);
END
$$;

REVOKE EXECUTE ON FUNCTION create_bi_role(bigint, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drop_bi_role(text) FROM PUBLIC;
