"""One decorator that documents an endpoint in /docs from its pydantic models: body, query
parameters, the success response, the problem+json answers it may give, and whether it needs a token."""
from __future__ import annotations

from functools import partial
from typing import Any, Iterable

from pydantic import BaseModel
from sanic_ext.extensions.openapi import openapi
from sanic_ext.extensions.openapi.builders import OperationStore
from sanic_ext.extensions.openapi.definitions import Component, Parameter, RequestBody, Response
from sanic_ext.extensions.openapi.types import Schema

from backend.kit.errors import PROBLEM_CONTENT_TYPE

__all__ = ["doc", "Problem", "document_websockets"]


class FieldProblem(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable, `detail` is in the request's language."""
    type: str
    title: str
    status: int
    code: str
    detail: str
    lang: str
    instance: str
    request_id: str | None = None
    errors: list[FieldProblem] | None = None
    more_errors: int | None = None  # field errors found but not listed (the list stops at 20)


_SCHEMA_KEYS = ("type", "format", "pattern", "minimum", "maximum", "minLength", "maxLength", "enum", "default")


def _schema(json_schema: dict[str, Any]) -> Schema:
    """A JSON-schema fragment as sanic-ext's Schema (a plain dict would be documented as an object)."""
    return Schema(**{key: json_schema[key] for key in _SCHEMA_KEYS if key in json_schema})


def _query_parameters(model: type[BaseModel]) -> list[Parameter]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        if "anyOf" in prop:  # Optional[X]: document X, the parameter may simply be left out
            options = [o for o in prop.pop("anyOf") if o.get("type") != "null"]
            prop.update(options[0] if options else {})
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameters.append(Parameter(name, _schema(prop), "query", description=description,
                                    required=name in required))
    return parameters


class _ResponseWithHeaders(Response):
    """sanic-ext's Response keeps only the fields it annotates, and `headers` (part of the OpenAPI
    Response Object) is not one of them."""
    headers: dict[str, Any]


def _document_response_headers(func: Any, statuses: Iterable[int], headers: dict[str, Any]) -> None:
    """Add response headers to responses openapi.definition() has recorded for `func` (it passes a
    Response's status, content and description on, and drops anything else)."""
    operation = OperationStore()[func]
    for status in statuses:
        recorded = operation.responses[status]
        # sanic-ext documents "no content" as */*; a 304 has no body at all (RFC 9110 15.4.5)
        content = None if status == _NOT_MODIFIED else recorded.fields["content"]
        operation.responses[status] = _ResponseWithHeaders(
            content, status=status, description=recorded.fields["description"], headers=headers)


# headers every client of this API meets; documented so that generated clients send and read them
_ACCEPT_LANGUAGE = Parameter(
    "Accept-Language", Schema(type="string"), "header", required=False,
    description="Language of messages and names: zh (default), mn (Traditional Mongolian script) or en; "
                "RFC 9110 q-values are honoured.")
_IF_NONE_MATCH = Parameter(
    "If-None-Match", Schema(type="string"), "header", required=False,
    description="The ETag of the copy the client holds; the answer is 304 Not Modified with no body if "
                "it is still current.")
_ETAG_HEADER = {"ETag": {"description": "Strong validator of this representation; send it back in "
                                        "If-None-Match to revalidate.", "schema": {"type": "string"}}}
_NOT_MODIFIED = 304


def doc(*, summary: str, tag: str, body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
        status: int = 200, errors: Iterable[int] = (), secured: bool = False,
        path_parameters: dict[str, dict[str, Any]] | None = None, extra_responses: dict[int, str] | None = None,
        media_types: Iterable[str] = (), upload: dict[str, dict[str, Any]] | None = None):
    """`media_types`: the success answer is a file in one of these types (an image), not JSON.
    `upload`: the body is multipart/form-data with these fields (JSON-schema fragments; a field of
    format "binary" is the file), all required; for routes declared with ctx_upload=True."""
    # a catalogue read that can answer 304 is a conditional GET: it takes If-None-Match, gives an ETag
    conditional = _NOT_MODIFIED in (extra_responses or {})
    responses: list[Any] = []
    if media_types:
        responses.append(Response({media_type: Schema(type="string", format="binary") for media_type in media_types},
                                  status=status, description="OK"))
    elif response is not None:
        responses.append(Response({"application/json": Component(response)}, status=status,
                                  description="OK"))
    else:  # no body (204): an empty content map, which sanic-ext would otherwise document as */*
        responses.append(Response({}, status=status, description="No content"))
    for extra_status, description in (extra_responses or {}).items():
        responses.append(Response({}, status=extra_status, description=description))
    for error_status in sorted(set(errors) | {500} | ({401, 403} if secured else set())
                               | ({400, 413, 415, 422} if body is not None or upload is not None else set())
                               | ({422} if query is not None else set())):
        responses.append(Response({PROBLEM_CONTENT_TYPE: Component(Problem)},
                                  status=error_status, description="problem+json"))
    parameters: list[Any] = _query_parameters(query) if query is not None else []
    for name, json_schema in (path_parameters or {}).items():
        parameters.append(Parameter(name, _schema(json_schema), "path", required=True))
    parameters.append(_ACCEPT_LANGUAGE)
    if conditional:
        parameters.append(_IF_NONE_MATCH)
    kwargs: dict[str, Any] = {"summary": summary, "tag": tag, "response": responses, "parameter": parameters}
    if body is not None:
        kwargs["body"] = RequestBody({"application/json": Component(body)}, required=True)
    elif upload is not None:
        form = Schema(type="object", properties={name: _schema(field) for name, field in upload.items()},
                      required=list(upload))
        kwargs["body"] = RequestBody({"multipart/form-data": form}, required=True)
    if secured:
        kwargs["secured"] = {"bearer": []}
    definition = openapi.definition(**kwargs)
    if not conditional:
        return definition

    def document_with_validator(func: Any) -> Any:
        func = definition(func)
        _document_response_headers(func, (status, _NOT_MODIFIED), _ETAG_HEADER)
        return func
    return document_with_validator


def document_websockets(app: Any) -> None:
    """Sanic registers a websocket handler wrapped in a partial (its upgrade), and sanic-ext looks the
    partial up and finds no documentation: point it at the documentation of the handler inside."""
    store = OperationStore()
    for route in app.router.routes:
        handler = route.handler
        if isinstance(handler, partial) and getattr(handler.func, "__name__", "") == "_websocket_handler" \
                and handler.args and handler.args[0] in store:
            store[handler] = store[handler.args[0]]
