-- The customer index serves erasure and reads by customer. As a full index leading
-- with workspace_id it also competed with the primary key for lookups by journey id:
-- with statistics that predate a workspace's bulk load, the planner took it and
-- filtered every journey of the workspace by id, once per re-sent journey. As a
-- partial index on the journeys that have a customer, only a query that names a
-- customer (`customer_id = ...` implies it is not null) can use it.
DROP INDEX journeys_customer_idx;
CREATE INDEX journeys_customer_idx ON journeys (workspace_id, customer_id)
    WHERE customer_id IS NOT NULL;
