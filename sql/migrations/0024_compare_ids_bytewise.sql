-- Journey and customer ids are opaque keys: they are compared for equality and
-- listed in a stable order, never sorted for people to read. Under a linguistic
-- collation every comparison in their indexes goes through the C library's collation
-- routines; under "C" it is a plain byte comparison, which makes the index work of a
-- bulk load (a search per row in each of the two indexes) markedly cheaper. For
-- UTF-8 text, byte order is code point order, the order "C.UTF-8" databases already
-- used.
ALTER TABLE journeys
    ALTER COLUMN journey_id TYPE text COLLATE "C",
    ALTER COLUMN customer_id TYPE text COLLATE "C";
