-- Campaign credit: a run may credit channel x campaign pairs, stored as rows of the
-- new dimension 'campaign' with the pair's campaign in the new column (null in the
-- other dimensions' rows). Existing rows keep their dimensions and get null.
ALTER TABLE attribution_rows ADD COLUMN campaign text;

ALTER TABLE attribution_rows DROP CONSTRAINT attribution_rows_dimension_check;
ALTER TABLE attribution_rows ADD CONSTRAINT attribution_rows_dimension_check
    CHECK (dimension IN ('channel', 'stage', 'channel_stage', 'campaign'));
