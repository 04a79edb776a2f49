"""Keyset pagination for the outbox list: newest ``due_at`` first, ``id`` breaking ties.

The outbox is the largest table a list shows (every reminder ever planned, about 16 rows per participant), so a page
must cost the same on page 1 and page 1,000 and must not count the whole table. A page number would make PostgreSQL
sort or walk every row before the page (OFFSET) and the ``count`` would read them all. Instead the page ends with a
cursor that names the last row shown, ``(due_at, id)``; the next page starts strictly after it, read from the
``notification_list_order_idx`` index in order, so each page reads ``page_size + 1`` rows of it (the extra row tells
whether there is a next page). There is no total: a coordinator narrows the list with the filters instead.

A row whose ``due_at`` changes (re-planned, retried) while someone pages may be shown twice or not at all, as with any
live list; no row is ever shown out of order within a page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from notifications.models import Notification

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def encode_cursor(due_at: dt.datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{due_at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The ``(due_at, id)`` a cursor names; NotFound (404, as for an invalid page) for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, pk = raw.split("|")
        due_at = dt.datetime.fromisoformat(when)
        if due_at.tzinfo is None:
            raise ValueError("naive")
        return due_at, int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise NotFound("Invalid cursor.", code="invalid_cursor") from exc


def after(rows: QuerySet[Notification], due_at: dt.datetime, pk: int) -> QuerySet[Notification]:
    """Rows after ``(due_at, pk)`` in ``-due_at, -id`` order. The plain ``due_at <= x`` bound is what lets the index
    scan start at the cursor; the OR only sorts out the few rows that share its ``due_at``."""
    return rows.filter(due_at__lte=due_at).filter(Q(due_at__lt=due_at) | Q(id__lt=pk))


class OutboxCursorPagination(BasePagination):
    """``?cursor=<opaque>&page_size=N`` (max 500); the body is ``{next, results}``, ``next`` null on the last page."""

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def _page_size(self, request: Request) -> int:
        try:
            size = int(request.query_params.get(self.page_size_query_param, DEFAULT_PAGE_SIZE))
        except ValueError:
            return DEFAULT_PAGE_SIZE
        return DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        if not isinstance(queryset, QuerySet):
            raise TypeError("the outbox pages a queryset")
        self.request = request
        size = self._page_size(request)
        cursor = request.query_params.get(self.cursor_query_param)
        if cursor:
            queryset = after(queryset, *decode_cursor(cursor))
        rows = list(queryset.order_by("-due_at", "-id")[: size + 1])
        self.next_cursor = encode_cursor(rows[size - 1].due_at, rows[size - 1].pk) if len(rows) > size else None
        return rows[:size]

    def get_next_link(self) -> str | None:
        if self.next_cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), self.cursor_query_param, self.next_cursor)

    def get_first_link(self) -> str:
        return remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)

    def get_paginated_response(self, data: Sequence[Any]) -> Response:
        return Response({"next": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page (the same filters, after the last row shown); null on the last page.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The page after a row: copy it from the previous page's `next` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}).",
                "schema": {"type": "integer"},
            },
        ]
