"""A project with a NinjaAPI of its own next to hookhub's: the namespaces must not clash."""

from django.http import HttpRequest
from django.urls import include, path
from ninja import NinjaAPI

theirs = NinjaAPI(title="theirs")


@theirs.get("/ping")
def ping(request: HttpRequest) -> dict[str, str]:
    return {"pong": "yes"}


urlpatterns = [
    path("api/", include("hookhub.api.urls")),
    path("theirs/", theirs.urls),
]
