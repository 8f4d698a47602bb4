"""The portal alone, under a prefix of its own: proves it works wherever a project mounts it, and keeps these tests
independent of the rest of the project's URLs."""

from django.urls import include, path

urlpatterns = [
    path("customers/webhooks/", include("hookhub.portal.urls")),
]
