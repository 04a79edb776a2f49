"""``field__any=[...]``: membership in a list of values sent as ONE array parameter (``= ANY(%s)`` on PostgreSQL).

``field__in=[...]`` writes a placeholder per value; with a few thousand ids the statement itself becomes the cost
(the driver scans every placeholder, and the server parses and plans a list that long). An array is one parameter
whatever its length. SQLite, the embedded default, has no arrays: there it is the plain ``IN`` list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Field, Lookup
from django.db.models.lookups import In


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        values: Iterable[Any] = self.rhs
        return [self.lhs.output_field.get_prep_value(v) for v in values]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        if connection.vendor != "postgresql":
            return In(self.lhs, self.rhs).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(self.rhs))


Field.register_lookup(AnyOf)
