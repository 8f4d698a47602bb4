from .inbound import InboundMessage, Source
from .outbound import Application, Attempt, Delivery, Endpoint, EventType, Message

__all__ = ["Application", "Attempt", "Delivery", "Endpoint", "EventType", "InboundMessage", "Message", "Source"]
