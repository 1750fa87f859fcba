"""The service layer: no Flask, no marshmallow. Ingestion (the journey record is
declared once, in :mod:`api.service.ingest`), data selections, attribution runs and
their heartbeat, journey reports, per-journey credit export, table writers and signed
links. Raises :mod:`api.service.errors`, which the HTTP layer turns into problems."""
