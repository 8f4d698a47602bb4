"""Issue 19's "done when", from the command line, to a real HTTP sink on 127.0.0.1 through the real worker: an
endpoint added with ``--filter`` receives the amount-150 message and not the amount-50 one; one added with
``--channels eu`` receives the message sent with ``--channels eu`` and not the one sent with ``--channels us``."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError

from hookhub.models import Application, Delivery, Endpoint
from tests.support.cli import run
from tests.support.sink import Sink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]


def test_a_filtered_and_a_channelled_endpoint_receive_only_what_they_want(sink: Sink) -> None:
    run("app", "add", "acme")
    filtered = run("endpoint", "add", "acme", sink.url("/big"), "--filter", '{"amount": {"$gte": 100}}').split()[0]
    channelled = run("endpoint", "add", "acme", sink.url("/eu"), "--channels", "eu").split()[0]

    big = run("send", "acme", "invoice.paid", '{"amount": 150}').split()[0]
    small = run("send", "acme", "invoice.paid", '{"amount": 50}').split()[0]
    to_eu = run("send", "acme", "invoice.paid", '{"amount": 150}', "--channels", "eu").split()[0]
    to_us = run("send", "acme", "invoice.paid", '{"amount": 150}', "--channels", "us").split()[0]
    assert run("worker", "--once", "--no-purge").endswith("sent 4 delivery request(s).\n")

    # The filtered endpoint has no channels, so it gets the channelled messages too when they match.
    assert sorted(r.headers["webhook-id"] for r in sink.to("/big")) == [big, to_eu, to_us]  # ids sort by time
    assert [r.headers["webhook-id"] for r in sink.to("/eu")] == [to_eu]
    assert [json.loads(r.body)["amount"] for r in sink.to("/big")] == [150, 150, 150]
    assert not Delivery.objects.filter(message_id=small).exists()  # no delivery was ever created for it
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    shown = json.loads(run("endpoint", "show", filtered))
    assert (shown["filter"], shown["channels"]) == ({"amount": {"$gte": 100}}, [])
    assert json.loads(run("endpoint", "show", channelled))["channels"] == ["eu"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "{amount: 1}"], "--filter: not valid JSON"),
        (["--filter", '{"amount": {"$gte": "a", "$foo": 1}}'], "--filter: filter.amount.$foo: unknown operator $foo"),
        (["--filter", '{"a": {"$regex": "(a+)+"}}'], "--filter: filter.a.$regex: a $regex may not repeat a group"),
        (["--channels", "eu,not ok"], "--channels: channels.1: a channel is 1-128 letters, digits and - _ ."),
    ],
)
def test_endpoint_add_refuses_a_bad_filter_or_channel_in_one_line(args: list[str], message: str) -> None:
    Application.objects.create(uid="acme")
    with pytest.raises(CommandError) as refused:
        run("endpoint", "add", "acme", "https://acme.example/hook", *args)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    assert not Endpoint.objects.exists()
