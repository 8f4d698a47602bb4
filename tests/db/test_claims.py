"""The claim statements' shared pieces (``hookhub.db.claims``), against the real database."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from hookhub.db.claims import named_list, status_is
from hookhub.models import Application

pytestmark = pytest.mark.django_db


def test_status_is_writes_the_values_in_as_the_partial_indexes_do() -> None:
    assert status_is("c.status", "pending") == "c.status = 'pending'"
    assert status_is("status", "pending", "retrying") == "status IN ('pending', 'retrying')"


@pytest.mark.parametrize("statuses", [(), ("pending'; DROP TABLE x; --",), ("a b",)])
def test_status_is_refuses_what_is_not_a_status_constant(statuses: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="not a status constant"):
        status_is("status", *statuses)


def test_a_statement_bound_by_name_runs_on_this_database() -> None:
    apps = [Application.objects.create(uid=uid) for uid in ("a", "b", "c")]
    params: dict[str, Any] = {"uid": "b"}
    marks = named_list(params, "id", [apps[0].pk, apps[1].pk])
    table = connection.ops.quote_name(Application._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT uid FROM {table} WHERE id IN ({marks}) AND uid <> %(uid)s", params)  # noqa: S608
        assert cursor.fetchall() == [("a",)]
    assert params == {"uid": "b", "id0": apps[0].pk, "id1": apps[1].pk}
