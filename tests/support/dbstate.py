"""The content of every table as (row count, checksum), to prove that a request changed nothing (PostgreSQL)."""

from __future__ import annotations

from django.db import connection

State = dict[str, tuple[int, str]]


def tables(exclude: frozenset[str] = frozenset()) -> list[str]:
    return sorted(set(connection.introspection.table_names()) - exclude)


def snapshot(names: list[str]) -> State:
    """Row count and an MD5 of every row's text, ordered, per table: one statement for all tables."""
    quote = connection.ops.quote_name
    parts = [
        f"SELECT %s, count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {quote(name)} t"
        for name in names
    ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), names)
        return {name: (count, digest) for name, count, digest in cursor.fetchall()}


def differences(before: State, after: State) -> dict[str, str]:
    """Table -> what changed, for every table whose rows differ."""
    changed = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None or new is None:
            changed[name] = "table appeared" if old is None else "table disappeared"
        elif old[0] != new[0]:
            changed[name] = f"rows {old[0]} -> {new[0]}"
        else:
            changed[name] = f"{old[0]} rows, contents changed"
    return changed
