from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from hookhub.server import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("hooks/", include("hookhub.urls")),
    path("api/", include("hookhub.api.urls")),
    path("portal/", include("hookhub.portal.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
]
if getattr(settings, "DEMO", False):  # `serve --demo` only: an open endpoint that accepts anything
    urlpatterns.append(path("demo/receiver/<str:mode>/", views.demo_receiver, name="demo-receiver"))
