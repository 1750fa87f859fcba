-- touches_since(items, touched_at, since): the elements of a journey's per-touch array
-- whose touch lies at or after `since`, in touch order; the whole array when `since`
-- is null or the first touch is already inside the window.
-- Lookback windows trim channels and stages the same way in every raw-journey read;
-- one function keeps those reads from each spelling the trimming out again.
CREATE FUNCTION touches_since(items anyarray, touched_at timestamptz[], since timestamptz)
RETURNS anyarray
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN since IS NULL OR touched_at[1] >= since THEN items
    ELSE (
        SELECT array_agg(u.item ORDER BY u.ord)
        FROM unnest(items, touched_at) WITH ORDINALITY AS u(item, touched, ord)
        WHERE u.touched >= since
    ) END
$$;
