-- Advertising spend per day, channel and campaign, for cost per conversion and ROAS.
--
-- Amounts are kept in the workspace's reporting currency (`currency`, the setting at
-- the time of writing): a row sent in another currency carries the rate the sender
-- gave (reporting-currency units per unit of its own), and keeps its original amount
-- and currency beside the converted one. Money is numeric, so that sums are exact.
-- Spend without a campaign has campaign '' (not NULL), so that the key can be the
-- primary key and a row is replaced by sending it again. Spend is not path data: a
-- write here changes no data version, and tables join it when they are read.
CREATE TABLE spend (
    workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    day date NOT NULL,
    channel text NOT NULL,
    campaign text NOT NULL DEFAULT '',
    original_amount numeric NOT NULL CHECK (original_amount >= 0),
    original_currency text NOT NULL,
    rate numeric NOT NULL CHECK (rate > 0),
    amount numeric GENERATED ALWAYS AS (original_amount * rate) STORED,
    currency text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, day, channel, campaign)
);
