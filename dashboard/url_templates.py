"""Row links on the list pages, built from a template of each route instead of a ``reverse`` per row.

A page of lists holds a few hundred rows, each with links to its participant and to its actions; ``reverse`` walks
the URL patterns every time. The route is reversed once (per script prefix) with placeholders, and each row only
fills them in, quoted as ``reverse`` quotes them. tests/dashboard/test_url_templates.py holds the two to the same
result."""

from __future__ import annotations

import functools
from urllib.parse import quote

from django.urls import get_script_prefix, reverse
from django.utils.regex_helper import _lazy_re_compile

# Placeholders that every converter in use accepts: digits for ``<int:...>``, letters for ``<str:...>``; long
# enough never to occur in a route by chance.
_INT_MARK = "9081726354"
_STR_MARK = "zqxjkvwpfy"
# What ``reverse`` leaves unquoted in a substituted value (django/urls/resolvers.py, _reverse_with_prefix).
_SAFE = "!$&'()*+,;=" + "/~:@"
_MARKS = _lazy_re_compile(f"({_INT_MARK}|{_STR_MARK})")


@functools.lru_cache(maxsize=128)
def _template(prefix: str, name: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    marks = [_INT_MARK if kind == "int" else _STR_MARK for kind in kinds]
    url = reverse(name, args=marks)
    parts = _MARKS.split(url)
    if len(parts) != 2 * len(kinds) + 1:
        raise ValueError(f"route {name!r} does not take {len(kinds)} argument(s) of kinds {kinds}")
    return tuple(parts[::2])


def url_for(name: str, *args: int | str) -> str:
    """``reverse(name, args=args)`` for a route whose arguments are ``<int:...>`` (int values) or ``<str:...>``
    (str values)."""
    if any(isinstance(a, str) and (not a or "/" in a) for a in args):
        return reverse(name, args=args)  # no ``<str:...>`` takes these: let reverse say so (NoReverseMatch)
    kinds = tuple("int" if isinstance(a, int) else "str" for a in args)
    pieces = _template(get_script_prefix(), name, kinds)
    out = [pieces[0]]
    for arg, piece in zip(args, pieces[1:], strict=True):
        out.append(str(arg) if isinstance(arg, int) else quote(arg, safe=_SAFE))
        out.append(piece)
    return "".join(out)
