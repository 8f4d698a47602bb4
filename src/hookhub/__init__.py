"""hookhub: webhooks for Django, in both directions.

Public API::

    from hookhub import receiver

    @receiver("stripe", "invoice.paid")
    def on_paid(message, payload): ...
"""

from hookhub.inbound.handlers import receiver

__all__ = ["receiver"]
__version__ = "0.1.0.dev0"
