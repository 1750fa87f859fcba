-- BI roles read spend, as they read runs: only their own workspace's rows (row-level
-- security keyed by current_user, as in 0013), through the view spend_v1, so that
-- credit_v1 and spend can be joined in the database by channel and date range.
ALTER TABLE spend ENABLE ROW LEVEL SECURITY;
CREATE POLICY spend_bi ON spend FOR SELECT
    USING (workspace_id IN (SELECT b.workspace_id FROM bi_roles b WHERE b.role_name = current_user));

GRANT SELECT ON spend TO pathcredit_bi;
