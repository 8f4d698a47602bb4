"""The ceiling: a view that does nothing. Whatever the receive path costs is measured against this."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def nothing(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Message received okay.", content_type="text/plain")
