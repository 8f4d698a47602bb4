from __future__ import annotations

from typing import TypedDict

import hookhub


@hookhub.event_type("shop.opened", example={"shop": "s_1"})
class ShopOpened(TypedDict):
    """A shop opened its doors."""

    shop: str
