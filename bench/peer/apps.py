from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "bench.peer"
    label = "bench_peer"

    def ready(self) -> None:
        from . import events  # noqa: F401 - declares the event
