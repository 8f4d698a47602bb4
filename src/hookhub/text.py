"""Shortening text for narrow places: one home, used by the portal, ``hookhub tail`` and (later) the admin.

URLs are shortened in the middle: their host and their last path segment are what tell two endpoints apart
(``127.0.0.1:8000/…/receiver-b``), while the scheme and the shared middle are what they have in common.
"""

from __future__ import annotations

from urllib.parse import urlsplit

ELLIPSIS = "…"


def middle(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters by removing its middle, keeping both ends."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    head = (limit - 1) // 2
    tail = limit - 1 - head
    return f"{text[:head]}{ELLIPSIS}{text[-tail:] if tail else ''}"


def end(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at its end."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS[: max(limit, 0)]


def short_url(url: str, limit: int = 48) -> str:
    """``url`` in at most ``limit`` characters, keeping what tells it apart: the host, then the end of the path.

    The scheme goes first (``https://`` says little), then the middle of the path is replaced by ``…``, keeping the
    last segment (and the query, when there is room). What still does not fit is cut in the middle.
    """
    parts = urlsplit(url)
    if not parts.netloc:
        return middle(url, limit)
    rest = url.split(parts.netloc, 1)[1]  # the path, query and fragment exactly as written
    bare = parts.netloc + rest
    if len(bare) <= limit:
        return bare
    path = parts.path.rstrip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    after = rest[len(parts.path) :]  # ?query#fragment
    for tail in (f"/{ELLIPSIS}/{last}{after}", f"/{ELLIPSIS}/{last}"):
        candidate = parts.netloc + tail
        if last and len(candidate) <= limit:
            return candidate
    if last and len(parts.netloc) + 3 < limit:
        # The host is kept whole if it leaves room; the last segment is cut in its middle.
        room = limit - len(parts.netloc) - 3
        return f"{parts.netloc}/{ELLIPSIS}/{middle(last, room)}"
    return middle(bare, limit)
