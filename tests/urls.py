from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/code/", include("hookhub.urls")),
    path("api/", include("hookhub.api.urls")),
    path("portal/", include("hookhub.portal.urls")),
]
