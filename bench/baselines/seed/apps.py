from django.apps import AppConfig


class SeedConfig(AppConfig):
    name = "bench.baselines.seed"
    label = "bench_seed"
    default_auto_field = "django.db.models.BigAutoField"
