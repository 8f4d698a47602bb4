"""Endpoint payload filters: Convoy's syntax (dotted paths, ``$`` operators), validated once and matched at publish.

A filter is a JSON object of paths and conditions, e.g. ``{"amount": {"$gte": 100}, "data.currency": {"$in":
["eur", "usd"]}}``; every entry must hold. A path is dotted (``data.currency``) or nested (``{"data": {"currency":
...}}``, the same thing); ``headers.<name>`` is a header of the message (case-insensitive name). In a path, a number
picks an element of an array (``items.0.sku``) and ``$`` any element (``items.$.sku``, at most 3 per path). A
condition is a value (equality; on an array, "holds the value") or an object of operators: ``$eq $neq $gt $gte $lt
$lte $in $nin $exist $regex``; ``$and``/``$or`` take lists of filters, evaluated where they stand.

``validate`` refuses (``Refused``) what is not a filter, naming the position (``filter.amount.$gte``); ``matches``
never raises: a type mismatch (``$gt`` between a string and a number) or anything a rule-bypassing write stored is a
non-match. A filter is a customer's input evaluated on the server, so it is bounded (``MAX_BYTES``, ``MAX_DEPTH``,
``MAX_CONDITIONS``) and a ``$regex`` is Python's ``re`` held to what cannot backtrack for long
(``hookhub.outbound.safe_regex``); a filter's ``$regex`` conditions together read at most ``REGEX_READ`` characters of
a message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from hookhub import payloads
from hookhub.exceptions import Refused

from .safe_regex import REGEX_SUBJECT, check_regex, compiled

MAX_BYTES = 10_000  # the filter as compact JSON
MAX_DEPTH = 10  # objects and lists inside one another
MAX_CONDITIONS = 100  # operators and equalities, $and/$or included
MAX_WILDCARDS = 3  # "$" segments in one path (Convoy's limit)
MAX_VALUES = 100  # values one path yields through its "$" segments; the rest are not looked at
MAX_PATH = 200
REGEX_READ = 10_000  # characters all $regex conditions of one filter read in one message

COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$neq", *COMPARISONS, "$in", "$nin", "$exist", "$regex", "$and", "$or")
_OPERATOR_LIST = ", ".join(OPERATORS)
_EXAMPLE = 'e.g. {"amount": {"$gte": 100}}'
_MISSING: tuple[Any, ...] = ()


# Validation -------------------------------------------------------------------------------------------------------


def validate(spec: Any) -> None:
    """Nothing when ``spec`` is a filter ``matches`` can apply; else ``Refused`` naming the position at fault."""
    if not isinstance(spec, dict):
        raise _refused("filter", f"a filter is a JSON object of paths and conditions, {_EXAMPLE}")
    try:
        payloads.check_payload(spec, "filter")
    except payloads.Unstorable as exc:
        raise _refused(exc.where, exc.problem) from None
    size = len(json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_BYTES:
        raise _refused("filter", f"at most {MAX_BYTES:,} bytes as JSON, got {size:,}")
    _Checker().scope(spec, "filter", (), 1)


def _refused(where: str, problem: str) -> Refused:
    return Refused(where, f"{where}: {problem}.")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    def __init__(self) -> None:
        self.conditions = 0

    def count(self, where: str) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _refused(where, f"a filter may hold at most {MAX_CONDITIONS} conditions")

    def depth(self, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _refused(where, f"nested more than {MAX_DEPTH} levels")

    def scope(self, spec: dict[str, Any], where: str, path: tuple[str, ...], depth: int) -> None:
        """The entries of a filter object standing at ``path`` (a filter, or the value of a path)."""
        self.depth(where, depth)
        for key, value in spec.items():
            here = f"{where}.{key}"
            if not isinstance(key, str):
                raise _refused(here, "a path is a string")
            if key.startswith("$"):
                self.operator(key, value, here, path, depth)
            else:
                self.path_value(value, here, (*path, *self.segments(key, here, path)), depth + 1)

    def segments(self, key: str, where: str, path: tuple[str, ...]) -> tuple[str, ...]:
        if not key or len(key) > MAX_PATH or not key.isprintable():
            raise _refused(where, f"a path is 1-{MAX_PATH} printable characters, such as data.amount")
        parts = tuple(key.split("."))
        if "" in parts:
            raise _refused(where, "a path has no empty part (no leading, trailing or double dot)")
        full = (*path, *parts)
        if sum(p == "$" for p in full) > MAX_WILDCARDS:
            raise _refused(where, f"at most {MAX_WILDCARDS} $ (any element) in one path")
        if full[0] == "headers" and len(full) > 1 and "$" in full[1:]:
            raise _refused(where, "a header name has no $")
        return parts

    def path_value(self, value: Any, where: str, path: tuple[str, ...], depth: int) -> None:
        """The condition on ``path``: a value to equal, or an object of operators and deeper paths."""
        if isinstance(value, dict):
            if not value:
                raise _refused(where, 'an empty object is no condition; to match an empty object write {"$eq": {}}')
            self.scope(value, where, path, depth)
            return
        if path == ("headers",):
            raise _refused(where, "name the header: headers.<name>")
        self.count(where)
        self.depth(where, depth + _nesting(value))

    def operator(self, name: str, operand: Any, where: str, path: tuple[str, ...], depth: int) -> None:
        self.count(where)
        if name in ("$and", "$or"):
            if not isinstance(operand, list) or not operand or not all(isinstance(f, dict) and f for f in operand):
                raise _refused(where, f'{name} takes a list of filter objects, e.g. [{{"a": 1}}, {{"b": 2}}]')
            for index, item in enumerate(operand):
                self.scope(item, f"{where}.{index}", path, depth + 2)
            return
        if name not in OPERATORS:
            raise _refused(where, f"unknown operator {name} (the operators are {_OPERATOR_LIST})")
        if not path:
            raise _refused(where, f'{name} needs a path: write {{"amount": {{"{name}": ...}}}}')
        if path == ("headers",):
            raise _refused(where, "name the header: headers.<name>")
        self.depth(where, depth + 1 + _nesting(operand))
        if name in COMPARISONS and not (_is_number(operand) or isinstance(operand, str)):
            raise _refused(where, f"{name} compares with a number or a string, got {_shown(operand)}")
        if name in ("$in", "$nin") and not isinstance(operand, list):
            raise _refused(where, f"{name} takes a list of values, got {_shown(operand)}")
        if name == "$exist" and not isinstance(operand, bool):
            raise _refused(where, f"$exist takes true or false, got {_shown(operand)}")
        if name == "$regex":
            if not isinstance(operand, str):
                raise _refused(where, f"$regex takes a regular expression as a string, got {_shown(operand)}")
            problem = check_regex(operand)
            if problem:
                raise _refused(where, problem)


def _nesting(value: Any) -> int:
    """How deep lists and objects go inside ``value`` (0 for a scalar)."""
    stack, deepest = [(value, 0)], 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


# Matching ---------------------------------------------------------------------------------------------------------


class _Budget:
    """One evaluation's state: what its $regex conditions may still read, and each $in list made a set once."""

    __slots__ = ("choices", "left")

    def __init__(self) -> None:
        self.left = REGEX_READ
        self.choices: dict[int, tuple[frozenset[Any], list[Any]]] = {}

    def choice_set(self, choices: list[Any]) -> tuple[frozenset[Any], list[Any]]:
        """The scalars of an $in list as keys (true is not 1: each key says its JSON type), and the rest."""
        found = self.choices.get(id(choices))
        if found is None:
            keys = frozenset(_key(c) for c in choices if not isinstance(c, (list, dict)))
            found = self.choices[id(choices)] = (keys, [c for c in choices if isinstance(c, (list, dict))])
        return found


def matches(spec: dict[str, Any], payload: Any, headers: Mapping[str, str]) -> bool:
    """Whether ``payload`` and ``headers`` (a message's) match the filter ``spec``; an empty filter matches all."""
    if not spec:
        return True
    try:
        return _scope(spec, (), payload, headers, _Budget())
    except (TypeError, ValueError, AttributeError, LookupError, ArithmeticError, RecursionError):
        # a stored filter that no rule let in
        return False


def _scope(spec: Any, path: tuple[str, ...], payload: Any, headers: Mapping[str, str], budget: _Budget) -> bool:
    if not isinstance(spec, dict) or not spec:
        return False
    for key, value in spec.items():
        if key == "$and":
            if not all(_scope(f, path, payload, headers, budget) for f in value):
                return False
        elif key == "$or":
            if not any(_scope(f, path, payload, headers, budget) for f in value):
                return False
        elif key.startswith("$"):
            if not path or not _holds(key, value, _values(path, payload, headers), budget):
                return False
        else:
            inner = (*path, *key.split("."))
            if isinstance(value, dict):
                if not _scope(value, inner, payload, headers, budget):
                    return False
            elif not _holds("$eq", value, _values(inner, payload, headers), budget):
                return False
    return True


def _values(path: tuple[str, ...], payload: Any, headers: Mapping[str, str]) -> tuple[Any, ...] | list[Any]:
    """What ``path`` names: none (missing), one value, or several through ``$`` (at most ``MAX_VALUES``)."""
    if path[0] == "headers":
        if len(path) == 1:
            return _MISSING
        name = ".".join(path[1:]).lower()
        return tuple(v for k, v in headers.items() if k.lower() == name)[:1]
    current: list[Any] = [payload]
    for segment in path:
        found: list[Any] = []
        for item in current:
            if isinstance(item, dict):
                if segment in item:
                    found.append(item[segment])
            elif isinstance(item, list):
                if segment == "$":
                    found.extend(item[: MAX_VALUES - len(found)])
                elif segment.isdigit() and int(segment) < len(item):
                    found.append(item[int(segment)])
            if len(found) >= MAX_VALUES:
                break
        if not found:
            return _MISSING
        current = found
    return current


def _holds(operator: str, operand: Any, values: tuple[Any, ...] | list[Any], budget: _Budget) -> bool:
    if not values:  # the path is missing: only the negative conditions hold
        return operator in ("$neq", "$nin") or (operator == "$exist" and operand is False)
    if operator == "$exist":
        return operand is True
    return any(_one(operator, operand, value, budget) for value in values)


def _one(operator: str, operand: Any, value: Any, budget: _Budget) -> bool:
    if operator == "$eq":
        return _contains_or_equals(value, operand)
    if operator == "$neq":
        return not _contains_or_equals(value, operand)
    if operator == "$in":
        return _in(value, operand, budget)
    if operator == "$nin":
        return not _in(value, operand, budget)
    if operator in COMPARISONS:
        return _compare(operator, value, operand)
    if operator == "$regex":
        return _search(operand, value, budget)
    return False  # an unknown operator stored around the rules


def _contains_or_equals(value: Any, operand: Any) -> bool:
    """Equality; a scalar against an array asks whether the array holds it (Convoy's and MongoDB's reading)."""
    if isinstance(value, list) and not isinstance(operand, list):
        return any(_equal(item, operand) for item in value)
    return _equal(value, operand)


def _in(value: Any, choices: Any, budget: _Budget) -> bool:
    """``value`` is one of ``choices`` (an array: one of its elements is); a set lookup per value, so a long list
    against a long array stays linear."""
    if not isinstance(choices, list):
        return False
    keys, others = budget.choice_set(choices)
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, (list, dict)):
            if any(_equal(item, other) for other in others):
                return True
        elif _key(item) in keys:
            return True
    return False


def _key(scalar: Any) -> tuple[str, Any]:
    """A JSON scalar as a set key that keeps its type: ``1`` and ``1.0`` meet, ``true`` and ``1`` do not."""
    if isinstance(scalar, bool):
        return ("bool", scalar)
    if _is_number(scalar):
        return ("number", scalar)
    return (type(scalar).__name__, scalar)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, "1" is not 1, 1 is 1.0; arrays and objects element by element."""
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return False


def _compare(operator: str, value: Any, operand: Any) -> bool:
    """Numbers with numbers, strings with strings (code point order: ISO dates compare as times); else no match."""
    if not ((_is_number(value) and _is_number(operand)) or (isinstance(value, str) and isinstance(operand, str))):
        return False
    if operator == "$gt":
        return bool(value > operand)
    if operator == "$gte":
        return bool(value >= operand)
    if operator == "$lt":
        return bool(value < operand)
    return bool(value <= operand)


def _search(pattern: Any, value: Any, budget: _Budget) -> bool:
    if not isinstance(pattern, str) or not isinstance(value, str) or budget.left <= 0:
        return False
    regex = compiled(pattern)  # a pattern the rule refuses (stored around it) is never run
    if regex is None:
        return False
    subject = value[: min(REGEX_SUBJECT, budget.left)]
    budget.left -= len(subject) or 1
    return regex.search(subject) is not None
