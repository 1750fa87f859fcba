"""pathcredit's service: an HTTP shell over a Flask-free service layer and the store.

Layers, each a package, arrows pointing down only::

    api.cli ──────────────┐
    api.http, api.html ──► api.service ──► api.store ──► PostgreSQL (sql/)
          │                    │
          └────────────────────┴──────────► attribution (the pure engine)

``api.app.create_app`` builds the Flask application. Importing this package loads
nothing heavy: the store, the CLI and the benchmarks do not pay for Flask.
"""
