"""The HTTP layer: one blueprint module per resource family (parse, call the
service, respond), the error handlers, authentication and the OpenAPI wiring."""
