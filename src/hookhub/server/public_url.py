"""The public URL of this gateway: the one home for where it comes from.

``HOOKHUB_PUBLIC_URL`` when set; else the address the data dir's last ``hookhub serve`` listened on (serve records
it in the data dir at start, and passes it to its children); else none, and URLs are printed as paths with
:data:`NOTE`. The serve banner, ``source add`` and ``portal-link`` all read it through ``conf.PUBLIC_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV = "HOOKHUB_PUBLIC_URL"
FILE = "public_url"
NOTE = f"set {ENV} to the address providers reach"
WILDCARDS = ("", "0.0.0.0", "::", "[::]")  # noqa: S104 - names the wildcard addresses, binds nothing


def listen_url(host: str, port: int) -> str:
    """The URL of ``serve --host HOST --port PORT`` on this machine (a wildcard host is reached on loopback)."""
    if host in WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def recorded(data_dir: Path) -> str:
    try:
        return (data_dir / FILE).read_text().strip().rstrip("/")
    except OSError:
        return ""


def record(data_dir: Path, url: str) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data_dir / FILE).write_text(url + "\n")


def resolve(environ: Mapping[str, str], data_dir: Path) -> str:
    return (environ.get(ENV) or "").strip().rstrip("/") or recorded(data_dir)


def from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    return bool((environ.get(ENV) or "").strip())


def path_note(printed: str) -> str | None:
    """The one-line note for a command that printed ``printed``: None when it is a full URL."""
    if not printed.startswith("/"):
        return None
    return f"note: that is a path, not a URL: {NOTE} (HOOKHUB['PUBLIC_URL'] in a Django project) or run hookhub serve."
