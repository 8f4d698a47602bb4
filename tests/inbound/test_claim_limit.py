"""The inbound claim never leases more than its limit, whatever the planner's statistics (issue 16): its candidates
are read into a list first, and the UPDATE names their ids."""

from __future__ import annotations

import pytest
from django.db import connection

from hookhub.inbound import processing
from hookhub.models import InboundMessage

from .conftest import MakeMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("count", [10, 50])
def test_a_claim_never_leases_more_than_its_limit(make_message: MakeMessage, count: int) -> None:
    for _ in range(count):
        make_message()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [InboundMessage._meta.db_table])
            if cursor.fetchone()[0]:
                pytest.skip("the table has statistics (autovacuum analysed it): the case needs a table without")
    claimed = processing.claim("w", 5)
    assert len(claimed) == 5
    assert InboundMessage.objects.filter(status=InboundMessage.Status.PROCESSING).count() == 5
