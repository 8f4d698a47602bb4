"""Include under any prefix: ``path("webhooks/", include("hookhub.urls"))`` → ``/webhooks/<slug>/``."""

from django.urls import path

from hookhub.inbound.views import receive

app_name = "hookhub"

urlpatterns = [
    path("<str:slug>/", receive, name="receive"),
    # Providers POST to the URL exactly as pasted and do not follow CommonMiddleware's 301 to the slashed form.
    path("<str:slug>", receive, name="receive-unslashed"),
]
