from .gateway import ApiToken, IdempotentResponse, WorkerHeartbeat
from .inbound import InboundMessage, InboundOrderMark, Source
from .outbound import Application, Attempt, Delivery, Endpoint, EndpointPace, EventType, Message
from .stats import StatBucket

__all__ = [
    "ApiToken",
    "Application",
    "Attempt",
    "Delivery",
    "Endpoint",
    "EndpointPace",
    "EventType",
    "IdempotentResponse",
    "InboundMessage",
    "InboundOrderMark",
    "Message",
    "Source",
    "StatBucket",
    "WorkerHeartbeat",
]
