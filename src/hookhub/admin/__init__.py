"""Django admin for both sides.

Sources are edited here unless they are declared in settings (those are read-only). Secrets are write-only: the
admin shows how many there are and how long, never their values. Inbound messages are a read-only record that can be
replayed (an action for many, a button for one) and deleted by superusers.
"""

from . import dashboard, messages, outbound, sources

__all__ = ["dashboard", "messages", "outbound", "sources"]
