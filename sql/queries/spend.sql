-- Spend: advertising cost per day, channel and campaign (campaign '' for none), in
-- the workspace's reporting currency. Every query is scoped to one workspace.

-- name: put_spend
-- Insert or replace rows by (day, channel, campaign); a row sent again unchanged is
-- left alone. Returns one row per row written, saying whether it was new.
INSERT INTO spend AS s (workspace_id, day, channel, campaign, original_amount,
    original_currency, rate, currency)
SELECT %(workspace_id)s, r.day, r.channel, r.campaign, r.original_amount,
    r.original_currency, r.rate, %(currency)s
FROM unnest(%(days)s::date[], %(channels)s::text[], %(campaigns)s::text[],
    %(amounts)s::numeric[], %(currencies)s::text[], %(rates)s::numeric[])
    AS r (day, channel, campaign, original_amount, original_currency, rate)
ON CONFLICT (workspace_id, day, channel, campaign) DO UPDATE
SET original_amount = excluded.original_amount, original_currency = excluded.original_currency,
    rate = excluded.rate, currency = excluded.currency, updated_at = now()
WHERE (s.original_amount, s.original_currency, s.rate, s.currency)
    IS DISTINCT FROM (excluded.original_amount, excluded.original_currency, excluded.rate,
        excluded.currency)
RETURNING (xmax = 0) AS created

-- name: list_spend
SELECT day, channel, campaign, amount, currency, original_amount, original_currency, rate
FROM spend
WHERE workspace_id = %(workspace_id)s
  AND (%(date_from)s::date IS NULL OR day >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR day <= %(date_to)s::date)
ORDER BY day, channel, campaign

-- name: delete_spend
DELETE FROM spend
WHERE workspace_id = %(workspace_id)s
  AND (%(date_from)s::date IS NULL OR day >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR day <= %(date_to)s::date)

-- name: spend_totals
-- Spend per channel and campaign over a date range (either end open).
SELECT channel, campaign, sum(amount)
FROM spend
WHERE workspace_id = %(workspace_id)s
  AND (%(date_from)s::date IS NULL OR day >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR day <= %(date_to)s::date)
GROUP BY channel, campaign
ORDER BY channel, campaign

-- name: spend_currencies
-- The reporting currencies the workspace's spend was stored in.
SELECT DISTINCT currency FROM spend WHERE workspace_id = %(workspace_id)s ORDER BY 1

-- name: spend_by_day
-- Spend per day, channel and campaign over a date range, for daily series.
SELECT day, channel, campaign, sum(amount)
FROM spend
WHERE workspace_id = %(workspace_id)s
  AND day BETWEEN %(date_from)s::date AND %(date_to)s::date
GROUP BY day, channel, campaign
ORDER BY day, channel, campaign
