"""Operational events: what an outcome tells the application's code (signals) and the operator's application.

Best effort by design: the outcomes are written before anything here runs, and what fails here is logged, never
raised, so telling someone about an outcome can neither undo nor repeat it.
"""

from __future__ import annotations

import logging
from typing import Any

from hookhub import signals
from hookhub.conf import conf
from hookhub.models import Delivery, Endpoint

from .jobs import Job, Result

logger = logging.getLogger("hookhub.outbound")


def announce(
    failures: list[tuple[Result, float | None]],
    exhausted: set[int],
    recovered: list[Endpoint],
    disabled: list[Endpoint],
) -> None:
    for result, _ in failures:
        final = result.job.delivery_id in exhausted
        _robust(signals.delivery_failed, job=result.job, outcome=result.outcome, final=final)
        if final or result.job.attempt == 1:
            try:
                operational("delivery.exhausted" if final else "delivery.failed", _delivery_event(result), result.job)
            except Exception:  # the outcome is written: telling the operator must not undo or repeat it
                logger.exception(
                    "hookhub: could not send the operational event for delivery %s", result.job.delivery_id
                )
    for endpoint in disabled:
        _robust(signals.endpoint_disabled, endpoint=endpoint, reason=endpoint.disabled_reason)
        _operational_robust("endpoint.disabled", endpoint)
    for endpoint in recovered:
        _robust(signals.endpoint_recovered, endpoint=endpoint)
        _operational_robust("endpoint.recovered", endpoint)


def _operational_robust(event_type: str, endpoint: Endpoint) -> None:
    try:
        operational(event_type, _endpoint_event(endpoint), None)
    except Exception:
        logger.exception("hookhub: could not send the operational event %s", event_type)


def _robust(signal: Any, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=Delivery, **kwargs):
        if isinstance(result, Exception):
            logger.error("hookhub: %r raised", receiver, exc_info=result)


def _delivery_event(result: Result) -> dict[str, Any]:
    job, outcome = result.job, result.outcome
    return {
        "delivery_id": job.delivery_id,
        "message_id": job.message_id,
        "application": job.application_uid,
        "event_type": job.event_type,
        "endpoint_id": job.endpoint_id,
        "url": job.url,
        "attempt": job.attempt,
        "response_status": outcome.status,
        "error": outcome.error,
    }


def _endpoint_event(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.pk,
        "application": endpoint.application.uid,
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
    }


def operational(event_type: str, payload: dict[str, Any], job: Job | None) -> None:
    """Tell the operator's application about hookhub itself; never about its own deliveries (no feedback loop)."""
    uid = conf.OPERATIONAL_APPLICATION
    if not uid or (job is not None and job.application_uid == uid) or payload.get("application") == uid:
        return
    from .publish import send

    try:
        send(event_type, payload, application=uid)
    except LookupError:
        logger.warning("hookhub: OPERATIONAL_APPLICATION %r does not exist", uid)
