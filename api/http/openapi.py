"""flask-smorest wired to our error format, and the spec as a file.

Every error response in the spec is ``application/problem+json`` with the Problem
schema; the body parser reads gzip bodies (``Content-Encoding: gzip``) as the events
route does, and answers a non-JSON body with 415, an empty body, broken JSON or broken
gzip with 400 and a body over the size limit (after decompression) with 413.
"""

from __future__ import annotations

import http
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
import yaml
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Flask, Request, g
from flask.views import MethodView
from flask_smorest.utils import prepare_response
from webargs.core import parse_json
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import BaseConverter

from ..problems import PROBLEM_TYPE, BadRequest, FieldError, InvalidInput, UnsupportedMediaType
from ..schemas.common import ProblemSchema
from ..schemas.selection import JSONObject, no_nul
from ..service.ingest import MAX_TEXT
from ..service.tables import CSV_TYPE
from . import bodies
from .tables import TABLE_MARK

F = TypeVar("F", bound=Callable[..., Any])

SPEC_OPTIONS: dict[str, Any] = {
    "info": {
        "description": (
            "Multi-touch attribution over a PostgreSQL path store. Send an API key as "
            "`Authorization: Bearer <key>`. Errors are RFC 9457 problem details."
        ),
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        "contact": {"name": "pathcredit"},
    },
    "servers": [
        {
            "url": "http://127.0.0.1:8000",
            "description": "`make run` on this machine (PATHCREDIT_PORT moves it)",
        },
    ],
    "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
    "security": [{"apiKey": []}],
}


OPERATION_IDS: dict[tuple[str, str], str] = {
    ("post", "/v1/journeys"): "ingest_journeys",
    ("post", "/v1/journeys/bulk"): "ingest_journey_file",
    ("get", "/v1/journeys/{journey_id}"): "get_journey",
    ("delete", "/v1/journeys/{journey_id}"): "delete_journey",
    ("delete", "/v1/customers/{customer_id}"): "erase_customer",
    ("get", "/v1/customers/{customer_id}/journeys"): "list_customer_journeys",
    ("post", "/v1/paths"): "store_paths",
    ("get", "/v1/channels"): "list_channels",
    ("get", "/v1/stages"): "list_stages",
    ("put", "/v1/stages"): "set_stages",
    ("get", "/healthz"): "check_health",
    ("get", "/readyz"): "check_readiness",
    ("post", "/v1/attribution"): "run_attribution",
    ("get", "/v1/attribution/runs"): "list_runs",
    ("post", "/v1/attribution/runs"): "start_run",
    ("post", "/v1/attribution/validate"): "validate_models",
    ("get", "/v1/attribution/runs/{run_id}"): "get_run",
    ("get", "/v1/attribution/runs/{run_id}/table"): "get_run_table",
    ("get", "/v1/attribution/table"): "get_attribution_table",
    ("get", "/v1/attribution/runs/{run_id}/journeys"): "get_run_journeys",
    ("get", "/v1/attribution/runs/{run_id}/comparison"): "get_run_comparison",
    ("get", "/v1/spend"): "list_spend",
    ("put", "/v1/spend"): "store_spend",
    ("delete", "/v1/spend"): "delete_spend",
    ("get", "/v1/settings"): "get_settings",
    ("put", "/v1/settings"): "set_settings",
    ("get", "/v1/settings/time-zone-changes/{change_id}"): "get_time_zone_change",
    ("get", "/v1/attribution/series"): "get_attribution_series",
    ("get", "/v1/reports/transitions"): "report_transitions",
    ("get", "/v1/reports/paths"): "report_top_paths",
    ("get", "/v1/reports/funnel"): "report_funnel",
    ("get", "/v1/reports/dropoff"): "report_dropoff",
    ("get", "/v1/reports/loops"): "report_loops",
    ("get", "/v1/reports/loops/summary"): "report_loop_summary",
    ("get", "/v1/reports/channel-roles"): "report_channel_roles",
    ("get", "/v1/reports/timing"): "report_timing",
    ("get", "/v1/reports/stage-removal-effects"): "report_stage_removal_effects",
    ("get", "/v1/reports/sequence-effects"): "report_sequence_effects",
    ("post", "/v1/events"): "ingest_events",
    ("get", "/v1/event-rules"): "get_event_rules",
    ("put", "/v1/event-rules"): "set_event_rules",
    ("get", "/v1/event-rules/rederivations/{rederivation_id}"): "get_rederivation",
    ("get", "/report"): "view_report",
    ("post", "/v1/report-links"): "create_report_link",
    ("get", "/metrics"): "get_metrics",
    ("get", "/v1/saved-reports"): "list_saved_reports",
    ("post", "/v1/saved-reports"): "create_saved_report",
    ("get", "/v1/saved-reports/{name}"): "get_saved_report",
    ("put", "/v1/saved-reports/{name}"): "replace_saved_report",
    ("delete", "/v1/saved-reports/{name}"): "delete_saved_report",
    ("get", "/v1/saved-reports/{name}/table"): "get_saved_report_table",
    ("get", "/v1/saved-reports/{name}/comparison"): "get_saved_report_comparison",
    ("get", "/v1/saved-reports/{name}/series"): "get_saved_report_series",
    ("get", "/v1/saved-reports/{name}/links"): "list_table_links",
    ("post", "/v1/saved-reports/{name}/links"): "create_table_link",
    ("delete", "/v1/saved-reports/{name}/links/{link_id}"): "revoke_table_link",
}
"""The stable ``operationId`` of every operation: the name a generated client gives
its function. A route missing here gets one derived from its method and path, and a
test fails until it is named here."""

METHODS = ("get", "put", "post", "delete", "patch")


def operation_id(method: str, path: str) -> str:
    """The operation's name from :data:`OPERATION_IDS`, else derived (``get_v1_x``)."""
    named = OPERATION_IDS.get((method, path))
    if named is not None:
        return named
    if path.endswith(CSV_SUFFIX) and (method, path.removesuffix(CSV_SUFFIX)) in OPERATION_IDS:
        return OPERATION_IDS[(method, path.removesuffix(CSV_SUFFIX))] + "_csv"
    words = [w for w in re.split(r"[^a-z0-9]+", path.lower()) if w and w != "v1"]
    return "_".join([method, *words])


def with_operation_ids(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every operation named (operations that name themselves keep it)."""
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                item[method] = {"operationId": operation_id(method, path), **item[method]}
    return spec


class Parser(FlaskParser):
    """webargs parser that refuses non-JSON and empty bodies instead of reading them as
    none, a streamed body over the size limit instead of reading its first part, and a
    body nested past the interpreter's recursion limit."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            raise UnsupportedMediaType("Send the body as application/json.")
        data = read_body(req)
        if not data:
            raise BadRequest("The request body is empty; send a JSON object.")
        try:
            return parse_json(data)
        except RecursionError:
            detail = "The request body nests arrays and objects too deeply to be read."
            raise InvalidInput(detail, [FieldError("/", detail)]) from None

    def _handle_invalid_json_error(self, error: Exception, req: Request, *a: Any, **k: Any) -> Any:
        raise BadRequest("The request body is not valid JSON.")


def read_body(req: Request) -> bytes:
    """The body (gzip or not) within the request's size limit."""
    limit = req.max_content_length
    return bodies.whole(limit if limit is not None else sys.maxsize, req)


CSV_SUFFIX = ".csv"


def csv_twin(view: type[MethodView]) -> type[MethodView]:
    """``<rule>.csv``: the same table as CSV alone, an operation of its own. A generated
    client reads a response by its first media type, so the CSV of a route that also
    answers JSON is only typed as text in an operation that answers nothing else."""
    table = view.get  # type: ignore[attr-defined]

    def get(self: MethodView, *args: Any, **kwargs: Any) -> Any:
        g.pathcredit_csv = True
        return table(self, *args, **kwargs)

    doc = dict(table._apidoc)
    response = dict(doc["response"])
    responses = dict(response["responses"])
    responses[200] = [r for r in responses[200] if r.get("content_type") == CSV_TYPE]
    doc["response"] = {**response, "responses": responses}
    doc["success_status_codes"] = [200]
    get._apidoc = doc  # type: ignore[attr-defined]
    summary = (table.__doc__ or "").strip().splitlines()[0].rstrip(".")
    get.__doc__ = (
        f"{summary} (CSV alone).\n\nThe route without `.csv`, its parameters and "
        "its rows, answered as RFC 4180 CSV only (`format` is ignored)."
    )
    return type(f"{view.__name__}Csv", (MethodView,), {"get": get})


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def route(self, rule: str, **options: Any) -> Callable[[Any], Any]:
        """flask-smorest's; a view whose ``get`` is a table also gets its CSV twin at
        ``<rule>.csv`` (see :func:`csv_twin`)."""
        register = super().route(rule, **options)

        def decorator(view: Any) -> Any:
            register(view)
            get = getattr(view, "get", None)
            if isinstance(view, type) and getattr(get, TABLE_MARK, False):
                super(Blueprint, self).route(rule + CSV_SUFFIX, **options)(csv_twin(view))
            return view

        return decorator

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """flask-smorest's, with the schema's ``EXAMPLE`` as the request body example
        (what "Try it out" on /docs sends)."""
        example = getattr(schema, "EXAMPLE", None)
        if location == "json" and example is not None:
            kwargs.setdefault("example", example)
        return super().arguments(schema, location=location, **kwargs)

    def query_arguments(self, schema: type[ma.Schema]) -> Callable[[F], F]:
        """Query parameters by ``schema``; unknown parameters are refused, not ignored."""
        return self.arguments(schema, location="query", unknown=ma.RAISE)  # type: ignore[no-any-return]

    def problems(self, *codes: int) -> Callable[[F], F]:
        """Document the error responses a view can give (each a Problem)."""

        def decorator(func: F) -> F:
            for code in codes:
                func = self.alt_response(code, response=http.HTTPStatus(code).name)(func)
            return func

        return decorator


RESERVED_ID = "bulk"
"""The one id a journey path cannot name: the bulk upload's path segment."""


class IdConverter(BaseConverter):
    """A client's id in a URL path, as ingestion takes them: 1-200 characters, none a
    control character, "/" included (sent as it is or as %2F). Its rules do not merge
    repeated slashes, so an id starting with "/" is addressable too."""

    regex = f"[^\\x00-\\x1f\\x7f]{{1,{MAX_TEXT}}}"
    part_isolating = False


class JourneyIdConverter(IdConverter):
    """A journey id in a URL path: any id but ``bulk``, since ``/v1/journeys/bulk`` is the
    bulk upload's own path (its ``Allow`` header lists that route's methods alone)."""

    regex = f"(?!{RESERVED_ID}$){IdConverter.regex}"
    part_isolating = False  # werkzeug would infer True from a regex without "/"


def _id_schema(converter: IdConverter) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TEXT,
        "description": "The id as ingested, percent-encoded (a / may also be sent as it is).",
    }
    if isinstance(converter, JourneyIdConverter):
        schema["not"] = {"enum": [RESERVED_ID]}
        schema["description"] += f" `{RESERVED_ID}` is the bulk upload's path, not an id."
    return schema


NO_NUL = "^[^\\u0000]*$"
"""The pattern of text PostgreSQL can store (no NUL character), as :func:`no_nul` checks."""


class Converter(OpenAPIConverter):
    """apispec's converter, writing the rules our fields enforce into the spec.

    A schema's ``JSON_SCHEMA`` (a dict) is merged into its JSON schema, for rules
    across fields that field validators cannot show; dict keys get ``propertyNames``;
    :func:`no_nul` becomes a pattern; a JSON object carried in a query parameter
    (:class:`JSONObject`) is declared as ``content: application/json`` with the
    object's schema, so clients and fuzzers send JSON, not any string.
    """

    def init_attribute_functions(self) -> None:
        super().init_attribute_functions()  # type: ignore[no-untyped-call]
        self.add_attribute_function(_key_rules)  # type: ignore[no-untyped-call]
        self.add_attribute_function(_nul_pattern)  # type: ignore[no-untyped-call]

    def init_parameter_attribute_functions(self) -> None:
        super().init_parameter_attribute_functions()
        self.add_parameter_attribute_function(_json_parameter)

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        out: dict[str, Any] = super().schema2jsonschema(schema)  # type: ignore[no-untyped-call]
        out.update(getattr(resolve_schema_cls(schema), "JSON_SCHEMA", {}))
        return out


class Plugin(MarshmallowPlugin):
    Converter = Converter


def _key_rules(self: Converter, field: ma.fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    keys = getattr(field, "key_field", None)
    if not isinstance(field, ma.fields.Dict) or keys is None or not keys.validators:
        return {}
    names: dict[str, Any] = self.field2property(keys)
    names.pop("type", None)
    return {"propertyNames": names}


def _nul_pattern(self: Converter, field: ma.fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    if no_nul in field.validators and not any(hasattr(v, "regex") for v in field.validators):
        return {"pattern": NO_NUL}
    return {}


def _json_parameter(
    self: Converter, field: ma.fields.Field[Any], ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    if not isinstance(field, JSONObject):
        return {}
    ret.pop("schema", None)
    body: dict[str, Any] = {"type": "object"}
    if field.schema is not None:
        body = self.resolve_nested_schema(field.schema)  # type: ignore[no-untyped-call]
    elif field.dict_field is not None:
        body = self.field2property(field.dict_field)
    return {"content": {"application/json": {"schema": body}}}


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: Flask) -> None:
        app.url_map.converters["id"] = IdConverter
        app.url_map.converters["journey_id"] = JourneyIdConverter
        super().__init__(app, spec_kwargs={"marshmallow_plugin": Plugin()})
        self.register_converter(IdConverter, _id_schema)
        self.register_converter(JourneyIdConverter, _id_schema)

    def _register_error_handlers(self) -> None:
        """errors.register installs the only handlers."""

    def _register_pagination_header(self) -> None:
        """Lists page with cursors of their own; flask-smorest's paging is unused."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_TYPE
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Unexpected error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def configure(app: Flask) -> None:
    app.config.update(
        API_TITLE="pathcredit",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.1.0",
        API_SPEC_OPTIONS=SPEC_OPTIONS,
        OPENAPI_URL_PREFIX=None,  # the spec routes are ours (api/http/meta.py)
    )


def spec_dict(app: Flask) -> dict[str, Any]:
    api: Api = app.extensions["pathcredit.api"]
    return with_operation_ids(api.spec.to_dict())


def spec_yaml(app: Flask) -> str:
    text: str = yaml.safe_dump(spec_dict(app), sort_keys=False, allow_unicode=True, width=100)
    return text
