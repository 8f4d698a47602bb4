"""Svix: Standard Webhooks under ``svix-id``, ``svix-timestamp`` and ``svix-signature`` (Clerk, Resend, ...)."""

from __future__ import annotations

from .standard_webhooks import StandardWebhooksVerifier


class SvixVerifier(StandardWebhooksVerifier):
    name = "svix"
    header_prefix = "svix"


VERIFIER = SvixVerifier
