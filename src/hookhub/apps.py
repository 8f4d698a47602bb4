from typing import Any

from django.apps import AppConfig


class HookhubConfig(AppConfig):
    name = "hookhub"
    verbose_name = "hookhub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed
        from django.db.models.signals import post_migrate, post_save

        from hookhub import checks  # noqa: F401 - registers the system checks
        from hookhub.inbound import sources
        from hookhub.models import Source

        def sync(**kwargs: object) -> None:
            if kwargs.get("app_config") is self:
                sources.sync_settings_sources()

        post_migrate.connect(sync, dispatch_uid="hookhub.sync_sources")

        from hookhub.outbound import catalogue

        catalogue.autodiscover()  # <app>/webhooks.py: where event types are declared (hookhub.event_type)

        def sync_event_types(**kwargs: Any) -> None:
            if kwargs.get("app_config") is self:
                catalogue.on_post_migrate(**kwargs)

        # weak=False: a closure that nothing else holds would be collected, and migrate would never call it.
        post_migrate.connect(sync_event_types, weak=False, dispatch_uid="hookhub.sync_event_types")
        post_save.connect(lambda **kw: sources.clear_cache(), sender=Source, weak=False, dispatch_uid="hookhub.src")

        from hookhub.inbound.handlers import receiver
        from hookhub.inbound.verifiers import aws_sns

        # Built in: confirming an SNS subscription when its source opts in (it runs in processing, not on receipt).
        receiver("*", aws_sns.SUBSCRIPTION_CONFIRMATION)(aws_sns.confirm_subscription)

        from hookhub.outbound import model_events

        model_events.connect()
        setting_changed.connect(model_events.on_setting_changed, dispatch_uid="hookhub.model_events")
