"""Request-body parsers with limits: JSON nested deeper than any request of the API needs, and any text value longer
than any field of the API holds, are a 400 naming where, before a view or the audit trail sees them.

Without these, JSON nested 100,000 levels deep exhausted the decoder's recursion (a 500), and a 2 MB text value was
accepted and copied into the audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _long_texts(value: Any, limit: int, path: str = "") -> Iterator[str]:
    """The paths (``answers.PCL5_01``) of text values longer than ``limit`` characters, keys included."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if len(item) > limit:
                yield where or "non_field_errors"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and len(key) > limit:
                    yield where or "non_field_errors"
                stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, where) for child in item)


def check_limits(data: Any) -> None:
    depth, length = settings.API_MAX_JSON_DEPTH, settings.API_MAX_TEXT_LENGTH
    if _too_deep(data, depth):
        raise ParseError(f"the body nests deeper than {depth} levels")
    long = sorted(set(_long_texts(data, length)))
    if long:
        raise ValidationError({name.split(".")[0]: [f"at most {length} characters"] for name in long})


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # nesting beyond the decoder's own recursion limit
            raise ParseError("the body nests too deeply") from exc
        check_limits(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        check_limits({key: data.getlist(key) for key in data})
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        check_limits({key: parsed.data.getlist(key) for key in parsed.data})
        return parsed
