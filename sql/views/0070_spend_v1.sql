-- spend_v1: every stored spend row; `campaign` is null for spend without one, and
-- `amount` is in `currency`, the workspace's reporting currency when it was written.
CREATE OR REPLACE VIEW spend_v1 WITH (security_invoker = true) AS
SELECT
    workspace_id,
    day,
    channel,
    nullif(campaign, '') AS campaign,
    amount,
    currency,
    original_amount,
    original_currency,
    rate
FROM spend;

GRANT SELECT ON spend_v1 TO pathcredit_bi;
