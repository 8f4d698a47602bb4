from tests.hanging import Hanging, hanging
from tests.sink import SETTINGS, Received, Sink, deliver, recorded

__all__ = ["SETTINGS", "Hanging", "Received", "Sink", "deliver", "hanging", "recorded"]
