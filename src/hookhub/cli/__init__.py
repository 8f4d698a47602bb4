"""hookhub's subcommands. Each module defines ``help``, ``add_arguments(parser)`` and ``handle(command, options)``;
``manage.py hookhub <name>`` and the ``hookhub <name>`` console script both dispatch here.
"""

SUBCOMMANDS = {
    "serve": "hookhub.cli.serve",
    "init": "hookhub.cli.init",
    "worker": "hookhub.cli.worker",
    "source": "hookhub.cli.source",
    "replay": "hookhub.cli.replay",
    "purge": "hookhub.cli.purge",
    "app": "hookhub.cli.app",
    "event-type": "hookhub.cli.event_type",
    "endpoint": "hookhub.cli.endpoint",
    "send": "hookhub.cli.send",
    "resend": "hookhub.cli.resend",
    "recover": "hookhub.cli.recover",
    "token": "hookhub.cli.token",
    "portal-link": "hookhub.cli.portal_link",
    "alert": "hookhub.cli.alert",
    "tail": "hookhub.cli.tail.command",
    "demo-traffic": "hookhub.cli.demo",
    "rotate-encryption-key": "hookhub.cli.rotate_key",
    "partition": "hookhub.cli.partition",
}
