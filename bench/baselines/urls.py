from django.urls import path

from bench.baselines import ceiling
from bench.baselines.seed import views as seed

urlpatterns = [
    path("seed/webhook/", seed.webhook),
    path("ceiling/", ceiling.nothing),
]
