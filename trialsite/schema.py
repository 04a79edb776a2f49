"""The OpenAPI schema documents every answer the API can give, not only the successful one.

``AutoSchema`` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) adds the error responses each operation can answer, with their
body schemas, to whatever the view declares, so a new endpoint documents them without an annotation:

- 400 ``ValidationError``: an operation that reads a body or any parameter (a message list per field; ``detail`` and
  ``code`` for a refusal of the whole request);
- 401 and 403 ``Error``: an operation that authenticates (no or a bad credential; a role or site that may not);
- 404 ``Error``: an operation with any parameter or a body (an unknown or unreachable object, named in the path or
  the body; an invalid page);
- 409 ``Error``: an operation that writes (the state of the record refuses it);
- 429 ``Error``: a throttled operation, or one whose view sets ``rate_limited = True``.

A view's own declaration of one of these codes (``extend_schema(responses=...)``) is kept; one without a body gets the
common body. ``make fuzz`` checks the running API against this schema; tests/test_schema.py checks the schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import AllowAny

ERROR = "Error"
VALIDATION_ERROR = "ValidationError"

_DETAIL = {"type": "string", "description": "What was refused, in words a person can act on."}
_CODE = {"type": "string", "description": "A stable machine-readable reason, e.g. `not_found`, `conflict`."}

COMPONENTS: dict[str, dict[str, Any]] = {
    ERROR: {
        "type": "object",
        "description": "A refused request. A domain refusal may add field names, each with its messages.",
        "properties": {"detail": _DETAIL, "code": _CODE},
        "required": ["detail"],
        "additionalProperties": {},
    },
    VALIDATION_ERROR: {
        "description": (
            "Bad input: each field name with its list of messages (an object or list of them for a nested field), "
            "`non_field_errors` for the whole body; or `detail` and `code` for a request refused as a whole. A "
            "refusal without a field may be a plain list of messages."
        ),
        "anyOf": [
            {"type": "object", "properties": {"detail": _DETAIL, "code": _CODE}, "additionalProperties": {}},
            {"type": "array", "items": {"type": "string"}},
        ],
    },
}

DESCRIPTIONS = {
    "400": "Bad input: a message per field.",
    "401": "No credentials, or credentials that are invalid or expired.",
    "403": "The user's role or sites do not allow this.",
    "404": "Not found, or not visible to this user.",
    "409": "The record's current state refuses this change.",
    "429": "Too many requests; try again later.",
}

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def error_statuses(
    *, method: str, has_parameters: bool, has_body: bool, authenticates: bool, limited: bool
) -> set[str]:
    """The error status codes an operation can answer, from what it reads and how it is guarded."""
    codes = set()
    if has_body or has_parameters:
        codes.add("400")
    if authenticates:
        codes |= {"401", "403"}
    if has_parameters or has_body:
        codes.add("404")
    if method in UNSAFE_METHODS:
        codes.add("409")
    if limited:
        codes.add("429")
    return codes


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        view = self.view
        authenticates = bool(view.get_authenticators()) or not all(
            isinstance(p, AllowAny) for p in view.get_permissions()
        )
        codes = error_statuses(
            method=self.method,
            has_parameters=bool(operation.get("parameters")) or "{" in self.path,
            has_body="requestBody" in operation,
            authenticates=authenticates,
            limited=bool(view.get_throttles()) or bool(getattr(view, "rate_limited", False)),
        )
        responses = operation.setdefault("responses", {})
        for code in sorted(codes):
            body = self._error_component(VALIDATION_ERROR if code == "400" else ERROR)
            declared = responses.setdefault(code, {"description": DESCRIPTIONS[code]})
            declared.setdefault("content", {"application/json": {"schema": body}})
            if not declared.get("description"):
                declared["description"] = DESCRIPTIONS[code]
        return operation

    def _error_component(self, name: str) -> dict[str, str]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=COMPONENTS[name])
        self.registry.register_on_missing(component)
        return component.ref
