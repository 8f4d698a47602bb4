"""``python -m bench.purge_go``: ``hookhub purge`` that loads first and starts on a line read from stdin.

It imports Django, hookhub's settings and the purge's modules, prints ``ready``, waits for a line, then runs the
``hookhub purge`` command line (``hookhub.server.cli``) as ``hookhub purge`` itself does. So a scenario can time the
purge, and the load beside it, from the purge's start rather than from the interpreter's: the worker's periodic
purge (``Worker.tick``) runs in a process that has long started. The whole command is ``hookhub purge``'s.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    import django

    django.setup()
    import hookhub.cli.purge  # loaded before the signal, as a running worker has it
    import hookhub.retention  # noqa: F401
    from hookhub.server.cli import main as hookhub_main

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    hookhub_main(["hookhub", "purge"])


if __name__ == "__main__":
    main()
