from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from hookhub.server import views

# The gateway's own admin says whose it is; a Django project that includes hookhub's admin keeps its own titles.
admin.site.site_header = admin.site.site_title = "hookhub"
admin.site.index_title = "Gateway administration"

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
