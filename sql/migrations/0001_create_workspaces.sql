-- Workspaces (tenants) and their API keys.
-- Every later table is keyed by workspace_id first, so the schema can be distributed
-- by workspace (Citus) unchanged; these two small tables would be reference tables.
-- Keys are stored as a public lookup prefix plus the SHA-256 of the whole key: the
-- secret part is high-entropy random, so a fast hash is enough and a leaked table
-- does not leak usable keys.
CREATE TABLE workspaces (
    workspace_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    prefix text NOT NULL,
    key_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (workspace_id, prefix)
);

-- Authentication looks a key up by its prefix before the workspace is known.
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
