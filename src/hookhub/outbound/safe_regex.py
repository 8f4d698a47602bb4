"""The ``$regex`` of payload filters: Python's ``re``, held to what cannot backtrack for long, since a customer writes
the pattern and publish runs it.

A pattern is at most ``MAX_REGEX`` characters and holds no backreference, lookaround or conditional (which can take
exponential time), no repeat or alternation inside a repeated group (``(a+)+``, ``(a|aa)*``: the classic catastrophic
shapes), and few enough ways to try one string: about (start positions) x (the product of its repeats' ranges), an
open-ended repeat counting as ``REGEX_SUBJECT``, at most ``REGEX_BUDGET``. So one open-ended repeat fits, two only
after a ``^`` anchor (one start). It is searched in the first ``REGEX_SUBJECT`` characters of a string: at worst a
few milliseconds. The verdict and the compiled pattern are kept per pattern (compiled once).
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

MAX_REGEX = 200
REGEX_SUBJECT = 1_000  # characters of a string a $regex reads
REGEX_BUDGET = REGEX_SUBJECT * REGEX_SUBJECT  # about 5 ms at worst on a busy two-core machine

_parser: Any = importlib.import_module("re._parser")  # the parser re.compile uses (no public name, no stub)
_constants: Any = importlib.import_module("re._constants")

_REFUSED_OPS = {
    "GROUPREF": "a backreference",
    "GROUPREF_EXISTS": "a conditional",
    "ASSERT": "a lookahead or lookbehind",
    "ASSERT_NOT": "a lookahead or lookbehind",
}
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_ANCHORS = {"AT_BEGINNING", "AT_BEGINNING_STRING"}


def check_regex(pattern: str) -> str | None:
    """Why ``pattern`` may not be a ``$regex`` (None: it may): too long, not a valid ``re`` expression, or able to
    backtrack for long. What is cached is the verdict and the compiled pattern, per pattern."""
    return _regex(pattern)[1]


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> tuple[re.Pattern[str] | None, str | None]:
    if len(pattern) > MAX_REGEX:
        return None, f"a $regex has at most {MAX_REGEX} characters, got {len(pattern)}"
    try:
        compiled = re.compile(pattern)
        tree = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return None, f"not a valid regular expression: {exc}"
    try:
        ways = _ways(list(tree), inside_repeat=False)
    except ValueError as exc:
        return None, str(exc)
    starts = 1 if _anchored(list(tree)) else REGEX_SUBJECT
    if starts * ways > REGEX_BUDGET:
        return None, (
            "this $regex could backtrack for long: use at most one open-ended repeat (*, +, {n,}), "
            "or start it with ^, and keep bounded repeats small"
        )
    return compiled, None


def _anchored(items: list[Any]) -> bool:
    if not items:
        return False
    op, arg = items[0]
    if str(op) == "AT" and str(arg) in _ANCHORS:
        return True
    if str(op) == "SUBPATTERN":
        return _anchored(list(arg[-1]))
    return False


def _ways(items: list[Any], *, inside_repeat: bool) -> int:
    """The product of the ranges of the repeats in ``items``; ValueError for what is refused outright."""
    total = 1
    for op, arg in items:
        name = str(op)
        if name in _REFUSED_OPS:
            raise ValueError(f"a $regex may not hold {_REFUSED_OPS[name]}")
        if name in _REPEATS:
            low, high, body = arg
            if inside_repeat:
                raise ValueError("a $regex may not repeat a group that holds a repeat (e.g. (a+)+)")
            _ways(list(body), inside_repeat=True)
            span = REGEX_SUBJECT if high == _constants.MAXREPEAT else min(high - low + 1, REGEX_SUBJECT)
            total *= max(span, 1)
        elif name == "BRANCH":
            if inside_repeat:
                raise ValueError("a $regex may not repeat an alternation (write [ab]* rather than (a|b)*)")
            total *= sum(_ways(list(branch), inside_repeat=False) for branch in arg[1])
        elif name == "SUBPATTERN":
            total *= _ways(list(arg[-1]), inside_repeat=inside_repeat)
        elif name == "ATOMIC_GROUP":
            total *= _ways(list(arg), inside_repeat=inside_repeat)
        total = min(total, REGEX_BUDGET * REGEX_SUBJECT + 1)  # past the budget already: no need to grow
    return total


def compiled(pattern: str) -> re.Pattern[str] | None:
    """The compiled pattern, or None when ``check_regex`` refuses it."""
    return _regex(pattern)[0]
