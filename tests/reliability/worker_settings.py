"""The test project's settings plus the fault tests' handlers: what ``hookhub worker`` runs with in those tests."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.reliability.fault_handlers.FaultHandlers"]
