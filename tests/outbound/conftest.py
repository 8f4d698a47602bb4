from tests.support.hanging import Hanging, hanging
from tests.support.sink import SETTINGS, Received, Sink, deliver, recorded

__all__ = ["SETTINGS", "Hanging", "Received", "Sink", "deliver", "hanging", "recorded"]
