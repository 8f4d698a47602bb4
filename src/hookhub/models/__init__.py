from .inbound import InboundMessage, Source

__all__ = ["InboundMessage", "Source"]
