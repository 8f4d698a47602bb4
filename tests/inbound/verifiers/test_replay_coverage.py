"""Every verifier whose scheme signs a timestamp is tested against replays (``TimestampContract``): the list of
verifiers comes from the package, so a new timestamped scheme without those tests fails here."""

from __future__ import annotations

import importlib
import pkgutil

from hookhub.inbound.verifiers import available, get_verifier_class

from . import __path__ as here
from .contract import TimestampContract, VerifierContract


def contracts() -> list[type[VerifierContract]]:
    for module in pkgutil.iter_modules(here):
        if module.name.startswith("test_"):
            importlib.import_module(f"{__package__}.{module.name}")
    found: list[type[VerifierContract]] = []
    pending: list[type[VerifierContract]] = [VerifierContract]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__name__.startswith("Test"):
                found.append(sub)
    return found


def test_every_timestamped_configuration_has_the_replay_tests() -> None:
    missing = []
    for contract in contracts():
        _, secret = contract().credentials()
        verifier = contract().make(secret)
        if verifier.has_timestamp(verifier.options) and not issubclass(contract, TimestampContract):
            missing.append(contract.__name__)
    assert missing == []


def test_every_timestamped_verifier_is_covered() -> None:
    timestamped = {name for name in available() if get_verifier_class(name).has_timestamp()}
    covered = {c.verifier for c in contracts() if issubclass(c, TimestampContract)}
    assert timestamped, "no verifier signs a timestamp?"
    assert timestamped - covered == set()
