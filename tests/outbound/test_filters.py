"""Payload filters (``hookhub.outbound.filters``): every operator, paths into objects and arrays, headers, type
mismatches (a non-match, never an error), the refusals with their positions, and the bounds that keep a customer's
filter from holding up publish. No database: these are the rule and the matcher themselves."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hookhub.exceptions import Refused
from hookhub.outbound import filters

INVOICE = {
    "amount": 150,
    "currency": "eur",
    "paid": True,
    "note": None,
    "tags": ["vip", "b2b"],
    "created_at": "2026-11-05T10:00:00Z",
    "data": {"customer": {"id": "cus_1", "country": "DE"}, "total": 99.5},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
}
HEADERS = {"X-Tenant": "42", "X-Region": "eu-west"}


def match(spec: dict[str, Any], payload: Any = INVOICE, headers: dict[str, str] | None = None) -> bool:
    filters.validate(spec)  # every filter these tests match is one the rule lets in
    return filters.matches(spec, payload, HEADERS if headers is None else headers)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"amount": 150}, True),
        ({"amount": 150.0}, True),  # 150 is 150.0
        ({"amount": "150"}, False),  # a string is not a number
        ({"paid": 1}, False),  # true is not 1
        ({"paid": True}, True),
        ({"note": None}, True),
        ({"currency": {"$eq": "eur"}}, True),
        ({"currency": {"$neq": "eur"}}, False),
        ({"currency": {"$neq": "usd"}}, True),
        ({"amount": {"$gt": 150}}, False),
        ({"amount": {"$gte": 150}}, True),
        ({"amount": {"$lt": 150}}, False),
        ({"amount": {"$lte": 150}}, True),
        ({"amount": {"$gte": 100, "$lt": 200}}, True),  # every operator of an object must hold
        ({"amount": {"$gte": 100, "$lt": 120}}, False),
        ({"created_at": {"$gte": "2026-11-01"}}, True),  # strings compare with strings: ISO times in order
        ({"currency": {"$in": ["eur", "usd"]}}, True),
        ({"currency": {"$in": ["gbp"]}}, False),
        ({"currency": {"$nin": ["gbp"]}}, True),
        ({"currency": {"$nin": ["eur"]}}, False),
        ({"amount": {"$in": [150.0, "x"]}}, True),
        ({"paid": {"$in": [1, "true"]}}, False),  # true is not 1
        ({"data.customer": {"$in": [{"id": "cus_1", "country": "DE"}]}}, True),
        ({"note": {"$in": [None]}}, True),
        ({"currency": {"$exist": True}}, True),
        ({"currency": {"$exist": False}}, False),
        ({"refund": {"$exist": False}}, True),
        ({"refund": {"$exist": True}}, False),
        ({"note": {"$exist": True}}, True),  # present, though null
        ({"currency": {"$regex": "^e"}}, True),
        ({"currency": {"$regex": "^u"}}, False),
        ({"currency": {"$regex": "(?i)^EUR$"}}, True),
        ({"$or": [{"currency": "usd"}, {"amount": {"$gt": 100}}]}, True),
        ({"$or": [{"currency": "usd"}, {"amount": {"$gt": 200}}]}, False),
        ({"$and": [{"currency": "eur"}, {"amount": {"$gt": 100}}]}, True),
        ({"$and": [{"currency": "eur"}, {"amount": {"$gt": 200}}]}, False),
        ({"amount": {"$or": [{"$lt": 10}, {"$gt": 100}]}}, True),  # $or inside a path: relative to it
        ({"data": {"$or": [{"total": 1}, {"customer.country": "DE"}]}}, True),
    ],
)
def test_each_operator(spec: dict[str, Any], expected: bool) -> None:
    assert match(spec) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"data.customer.country": "DE"}, True),
        ({"data": {"customer": {"country": "DE"}}}, True),  # nested is the same as dotted
        ({"data.customer": {"country": "FR"}}, False),
        ({"data.total": {"$gt": 99}}, True),
        ({"data.customer.id": {"$regex": "^cus_"}, "data.total": {"$lt": 100}}, True),
        ({"tags": "vip"}, True),  # an array holds the value
        ({"tags": {"$eq": "b2c"}}, False),
        ({"tags": ["vip", "b2b"]}, True),  # an array equals an array element by element
        ({"tags": ["b2b", "vip"]}, False),
        ({"tags": {"$in": ["b2b", "x"]}}, True),  # an element is in the list
        ({"tags": {"$nin": ["vip"]}}, False),
        ({"items.0.sku": "A-1"}, True),
        ({"items.1.sku": "A-1"}, False),
        ({"items.5.sku": {"$exist": False}}, True),
        ({"items.$.sku": "B-7"}, True),  # $: any element
        ({"items.$.qty": {"$gt": 1}}, True),
        ({"items.$.qty": {"$gt": 2}}, False),
        ({"items.sku": "A-1"}, False),  # an array is entered by index or $, not by a key
        ({"amount.value": 150}, False),  # a path through a number leads nowhere
        ({"data.customer.id.x": {"$exist": False}}, True),
    ],
)
def test_paths_into_objects_and_arrays(spec: dict[str, Any], expected: bool) -> None:
    assert match(spec) is expected


def test_headers_are_matched_by_name_whatever_its_case() -> None:
    assert match({"headers.x-tenant": "42"})
    assert match({"headers": {"X-TENANT": {"$in": ["41", "42"]}}})
    assert match({"headers.X-Region": {"$regex": "^eu-"}})
    assert not match({"headers.X-Tenant": "43"})
    assert match({"headers.X-Missing": {"$exist": False}})
    assert not match({"headers.X-Tenant": "42"}, headers={})
    assert not match({"headers.X-Tenant": {"$gt": 41}})  # header values are strings


@pytest.mark.parametrize(
    "spec",
    [
        {"currency": {"$gt": 5}},
        {"amount": {"$gte": "100"}},
        {"amount": {"$regex": "1"}},
        {"paid": {"$lt": 2}},
        {"data": {"$gt": 1}},
        {"tags": {"$lte": "z"}},
        {"note": {"$gte": 0}},
    ],
)
def test_a_type_mismatch_is_a_non_match_never_an_error(spec: dict[str, Any]) -> None:
    assert match(spec) is False


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"refund": {"$neq": 1}}, True),
        ({"refund": {"$nin": [1]}}, True),
        ({"refund": {"$eq": None}}, False),
        ({"refund": {"$lt": 1}}, False),
        ({"refund": {"$regex": "."}}, False),
    ],
)
def test_a_missing_path_meets_only_the_negative_conditions(spec: dict[str, Any], expected: bool) -> None:
    assert match(spec) is expected


def test_a_payload_that_is_not_an_object_has_no_paths() -> None:
    assert match({"amount": {"$exist": False}}, payload=[1, 2])
    assert not match({"amount": 1}, payload="text")
    assert filters.matches({}, None, {})  # the empty filter matches everything


@pytest.mark.parametrize(
    ("spec", "position", "words"),
    [
        ([], "filter", "a filter is a JSON object"),
        ({"amount": {"$foo": 1}}, "filter.amount.$foo", "unknown operator $foo (the operators are $eq"),
        ({"data": {"amount": {"$gte": [1]}}}, "filter.data.amount.$gte", "$gte compares with a number or a string"),
        ({"amount": {"$gt": True}}, "filter.amount.$gt", "$gt compares with a number or a string, got true"),
        ({"currency": {"$in": "eur"}}, "filter.currency.$in", "$in takes a list of values"),
        ({"x": {"$exist": "yes"}}, "filter.x.$exist", "$exist takes true or false"),
        ({"$or": {"a": 1}}, "filter.$or", "$or takes a list of filter objects"),
        ({"$and": []}, "filter.$and", "$and takes a list of filter objects"),
        ({"$or": [{"a": {"$bad": 1}}]}, "filter.$or.0.a.$bad", "unknown operator $bad"),
        ({"$gt": 5}, "filter.$gt", "$gt needs a path"),
        ({"a..b": 1}, "filter.a..b", "a path has no empty part"),
        ({"": 1}, "filter.", "a path is 1-200 printable characters"),
        ({"a": {}}, "filter.a", "an empty object is no condition"),
        ({"headers": "x"}, "filter.headers", "name the header: headers.<name>"),
        ({"headers": {"$exist": True}}, "filter.headers.$exist", "name the header"),
        ({"a.$.$.$.$": 1}, "filter.a.$.$.$.$", "at most 3 $ (any element) in one path"),
        ({"name": {"$regex": "("}}, "filter.name.$regex", "not a valid regular expression"),
        ({"name": {"$regex": 5}}, "filter.name.$regex", "$regex takes a regular expression as a string"),
        ({"a": "x\x00"}, "filter.a", "NUL"),
        ({"a": float("nan")}, "filter.a", "NaN is not a JSON number"),
        ({1: "x"}, "filter.1", "a path is a string"),
    ],
)
def test_an_invalid_filter_is_refused_with_the_position_of_the_error(spec: Any, position: str, words: str) -> None:
    with pytest.raises(Refused) as refused:
        filters.validate(spec)
    assert refused.value.field == position
    assert refused.value.message.startswith(f"{position}: ")
    assert words in refused.value.message


def test_a_filter_is_bounded_in_size_depth_and_conditions() -> None:
    with pytest.raises(Refused, match=r"^filter: at most 10,000 bytes as JSON, got 1[0-9],"):
        filters.validate({"a": {"$in": ["x" * 100] * 100}})
    deep: dict[str, Any] = {"$eq": 1}
    for _ in range(12):
        deep = {"a": deep}
    with pytest.raises(Refused, match=r"nested more than 10 levels"):
        filters.validate(deep)
    with pytest.raises(Refused, match=r"at most 100 conditions") as refused:
        filters.validate({f"k{n}": n for n in range(101)})
    assert refused.value.field == "filter.k100"


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(a+)+$", "may not repeat a group that holds a repeat"),
        ("(a|aa)*x", "may not repeat an alternation"),
        (r"(\w)\1", "may not hold a backreference"),
        ("foo(?=bar)", "may not hold a lookahead or lookbehind"),
        ("a*a*x", "could backtrack for long"),
        ("[a-z]+@[a-z]+", "could backtrack for long"),
        ("x" * 201, "at most 200 characters"),
    ],
)
def test_a_regex_that_could_backtrack_for_long_is_refused(pattern: str, words: str) -> None:
    with pytest.raises(Refused) as refused:
        filters.validate({"name": {"$regex": pattern}})
    assert refused.value.field == "filter.name.$regex"
    assert words in refused.value.message


def test_the_worst_allowed_regex_on_the_worst_payload_stays_fast() -> None:
    """Anchored, two open-ended repeats (the most the budget allows) against strings built to make them backtrack,
    as many as the filter's reading budget lets through: bounded well under a second."""
    spec = {"items.$.name": {"$regex": "^a*a*x"}, "other": {"$regex": "^b*b*y"}}
    payload = {"items": [{"name": "a" * 5000}] * 100, "other": "b" * 5000}
    started = time.perf_counter()
    assert not match(spec, payload=payload)
    assert time.perf_counter() - started < 1.0


def test_a_long_in_list_against_a_long_array_stays_linear() -> None:
    spec = {"ids": {"$in": list(range(1_000, 2_500))}}  # about 7,500 bytes: as long as the size limit lets it be
    payload = {"ids": list(range(100_000))[::-1]}  # the one it holds near the end
    started = time.perf_counter()
    assert not match(spec, payload={"ids": list(range(50_000, 100_000))})
    assert match(spec, payload=payload)
    assert time.perf_counter() - started < 1.0


def test_a_filter_stored_around_the_rules_never_raises() -> None:
    """``Endpoint.objects.create`` skips the rules: whatever it stored, matching says no rather than failing."""
    stored: list[dict[str, Any]] = [
        {"a": {"$foo": 1}},
        {"$or": 5},
        {"$and": [1, 2]},
        {"a": {"$in": 5}},
        {"name": {"$regex": "(a+)+$"}},
        {"name": {"$regex": "("}},
        {"$gt": 1},
        {"a": {}},
    ]
    for spec in stored:
        assert filters.matches(spec, {"a": 1, "name": "aaaa"}, {}) is False, spec
