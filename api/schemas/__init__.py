"""Marshmallow request and response schemas, one module per resource family; the
OpenAPI spec is generated from them."""
