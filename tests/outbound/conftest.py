from tests.sink import SETTINGS, Received, Sink, deliver, recorded

__all__ = ["SETTINGS", "Received", "Sink", "deliver", "recorded"]
