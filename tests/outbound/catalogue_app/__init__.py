"""An app as a project would have one, with its event types declared in ``webhooks.py`` (found by autodiscover)."""
