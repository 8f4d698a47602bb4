"""Pieces shared by the send-side admin pages: badges, indented JSON fields, POST-only per-object buttons."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Func, IntegerField, Model, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hookhub import payloads
from hookhub.models import Delivery

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

Status = Delivery.Status

GREY, BLUE, AMBER, GREEN, RED = "#6c757d", "#0b5ed7", "#a15c00", "#198754", "#dc3545"
DELIVERY_COLOURS: dict[str, str] = {
    Status.PENDING: GREY,
    Status.SENDING: BLUE,
    Status.SUCCEEDED: GREEN,
    Status.FAILED: RED,
}


def badge(text: object, colour: str) -> SafeString:
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 8px;border-radius:8px;white-space:nowrap">{}</span>',
        colour,
        text,
    )


def delivery_badge(delivery: Delivery) -> SafeString:
    return badge(delivery.get_status_display(), DELIVERY_COLOURS.get(delivery.status, GREY))


def admin_url(site_name: str, model: type[Model], view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_{view}", args=[quote(a) for a in args])


def link(url: str, text: object) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, text)


def count_of(rows: QuerySet[Any]) -> Coalesce:
    """``COUNT(*)`` of a correlated queryset, as a subquery: no GROUP BY over the outer table, no join fan-out."""
    counted = rows.order_by().annotate(n=Func("pk", function="COUNT")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class PrettyJSONField(forms.JSONField):
    """Shows stored JSON indented, so schemas and header maps are readable and editable in the textarea."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        # A lone surrogate (a form redisplayed with one) shows as its JSON escape, which reads back as the same.
        return payloads.display_text(json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder))


JSON_TEXTAREA = forms.Textarea(
    attrs={
        "rows": 6,
        "cols": 80,
        "spellcheck": "false",
        "style": "font-family: monospace; width: 40em; max-width: 100%",
    }
)


def has_model_perm(model_admin: ModelAdmin[Any], request: HttpRequest, action: str) -> bool:
    """The model permission itself: the page may be view-only while its buttons still need ``change``."""
    codename = get_permission_codename(action, model_admin.opts)
    return bool(request.user.has_perm(f"{model_admin.opts.app_label}.{codename}"))


def object_button[M: Model](
    model_admin: ModelAdmin[M],
    request: HttpRequest,
    object_id: str,
    act: Callable[[M], None],
    *,
    allowed: bool,
) -> HttpResponse:
    """Run ``act`` for one object on POST only (the admin's CSRF check applies), then back to its change page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not allowed:
        raise PermissionDenied
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(f"No {model_admin.opts.verbose_name} with id {object_id!r}.")
    act(obj)
    return HttpResponseRedirect(admin_url(model_admin.admin_site.name, type(obj), "change", obj.pk))


def on_changelist(model_admin: ModelAdmin[Any], request: HttpRequest) -> bool:
    match = request.resolver_match
    return (
        match is not None and match.url_name == f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist"
    )
