from __future__ import annotations

import pytest
from django.test import override_settings

from hookhub.inbound import sources
from hookhub.models import Source

pytestmark = pytest.mark.django_db

DECLARED = {
    "SOURCES": {
        "stripe": {
            "VERIFIER": "stripe",
            "SECRETS": ["whsec_declared"],
            "CONFIRMER": "stripe",
            "CONFIRMER_OPTIONS": {"api_key": "sk_declared"},
            "RATE_LIMIT": "5/s",
        }
    }
}


@override_settings(HOOKHUB=DECLARED)
def test_declared_sources_are_mirrored_without_their_credentials() -> None:
    [row] = sources.sync_settings_sources()
    row.refresh_from_db()
    assert (row.name, row.verifier, row.rate_limit, row.confirmer, row.managed) == (
        "stripe",
        "stripe",
        "5/s",
        "stripe",
        True,
    )
    assert row.secrets == []
    assert row.confirmer_options == {}
    assert sources.secrets_of(row) == ["whsec_declared"]
    assert sources.confirmer_options_of(row) == {"api_key": "sk_declared"}


@override_settings(HOOKHUB=DECLARED)
def test_sync_is_idempotent_and_keeps_the_generated_slug() -> None:
    [first] = sources.sync_settings_sources()
    [second] = sources.sync_settings_sources()
    assert first.pk == second.pk
    assert Source.objects.get().slug == first.slug


def test_unknown_slugs_are_cached_as_misses(django_assert_num_queries: object) -> None:
    assert sources.get_by_slug("nope") is None
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert sources.get_by_slug("nope") is None
