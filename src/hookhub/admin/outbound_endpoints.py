"""Endpoints: editable, with health; secrets are never shown except once, right after an operator rotates one."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import OuterRef, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.models import Application, Delivery, Endpoint
from hookhub.outbound import applications, control, jobs, rules, schedule
from hookhub.signing import public_key

from .outbound_common import (
    AMBER,
    GREEN,
    JSON_TEXTAREA,
    RED,
    PrettyJSONField,
    admin_url,
    badge,
    count_of,
    link,
    object_button,
    on_changelist,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

    EndpointFormBase = ModelForm[Endpoint]
    EndpointAdminBase = admin.ModelAdmin[Endpoint]
else:
    EndpointFormBase = ModelForm
    EndpointAdminBase = admin.ModelAdmin

Status = Delivery.Status
HEALTH_WINDOW = 100  # the health column's success rate covers this many of the latest finished deliveries
RECOVER_WINDOW = timedelta(hours=24)


def _recent_finished() -> QuerySet[Delivery, Any]:
    return (
        Delivery.objects.filter(endpoint=OuterRef(OuterRef("pk")), status__in=[Status.SUCCEEDED, Status.FAILED])
        .order_by("-finished_at", "-pk")
        .values("pk")[:HEALTH_WINDOW]
    )


_REVEAL = "hookhub.endpoint_reveal"


def _shown(secret: str) -> str:
    return salted_hmac(_REVEAL, secret, algorithm="sha256").hexdigest()


def _what(endpoint: Endpoint) -> str:
    if endpoint.scheme == Endpoint.Scheme.ED25519:
        return "public key (receivers verify with it; the private key stays here)"
    return "signing secret"


def mark_rotated(request: HttpRequest, endpoint: Endpoint, secret: str) -> None:
    """Have the endpoint's page show ``secret`` once, keeping it server-side.

    Django's messages may travel in a cookie (signed, not encrypted), and so may the session: neither holds the
    secret. The session holds the endpoint's id and a keyed digest of the new secret; the next view of the
    endpoint's page reads the secret from its (encrypted) row, shows it if it is still that one, and forgets the mark.
    """
    request.session[_REVEAL] = {"endpoint": endpoint.pk, "digest": _shown(secret)}
    messages.success(request, f"New {_what(endpoint)} for {endpoint.pk}: shown below, only this once.")


def take_rotated(request: HttpRequest, endpoint: Endpoint) -> SafeString | None:
    """The reveal that ``mark_rotated`` left for ``endpoint``, once; None when there is none."""
    mark = request.session.get(_REVEAL)
    if not isinstance(mark, dict) or mark.get("endpoint") != endpoint.pk:
        return None
    del request.session[_REVEAL]
    if not constant_time_compare(str(mark.get("digest")), _shown(endpoint.secret)):
        return None  # rotated again since: that secret was never shown here, and this one is not the one announced
    return reveal(endpoint, endpoint.secret)


def reveal(endpoint: Endpoint, secret: str) -> SafeString:
    hours = f"{conf.SECRET_ROTATION_OVERLAP / 3600:g}"
    value = public_key(secret) if endpoint.scheme == Endpoint.Scheme.ED25519 else secret
    return format_html(
        "New {} for {}: <code>{}</code> — shown only this once: copy it now. "
        "The previous secret keeps signing for {} h, so the receiver can switch without missing a delivery.",
        _what(endpoint),
        endpoint.pk,
        value,
        hours,
    )


class RetryScheduleField(forms.CharField):
    """An endpoint's retry schedule as text (``5s,1m,10m,1h``); the rule (``rules.check_retry_schedule``) reads it."""

    def prepare_value(self, value: Any) -> Any:
        return schedule.format_schedule(value) if isinstance(value, list | tuple) else value


class OptionalJSONField(PrettyJSONField):
    """An empty box for none (rather than ``null``): the endpoint's filter."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


class EndpointForm(EndpointFormBase):
    # Explicit, so that a URL typed without a scheme means https on every Django version (5.2 warns otherwise).
    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"style": "width: 40em; max-width: 100%", "spellcheck": "false"}),
    )
    retry_schedule = RetryScheduleField(
        required=False,
        max_length=500,
        help_text=f"Waits before each retry, e.g. {schedule.SCHEDULE_EXAMPLE} (s, m, h, d); empty: RETRY_SCHEDULE.",
    )

    class Meta:
        model = Endpoint
        # Never "secret" or "previous_secrets": they are rotated, not typed, and never rendered.
        fields = ["application", "url", "description", "event_types", "body_format", "scheme", "headers"]
        fields += ["rate_limit", "fifo", "channels", "filter", "retry_schedule", "timeout"]
        json_fields = ("event_types", "headers", "channels", "filter")
        field_classes = dict.fromkeys(json_fields, PrettyJSONField) | {"filter": OptionalJSONField}
        widgets = dict.fromkeys(json_fields, JSON_TEXTAREA)

    # The rules themselves (URL and its SSRF pre-check, headers, patterns, rate limit) run in the model's
    # ``clean_fields``; an empty JSON box means none.
    def clean_event_types(self) -> Any:
        return self.cleaned_data.get("event_types") or []

    def clean_headers(self) -> Any:
        return self.cleaned_data.get("headers") or {}

    def clean_retry_schedule(self) -> list[float] | None:
        try:
            return rules.check_retry_schedule(self.cleaned_data.get("retry_schedule"))
        except Refused as exc:
            raise exc.as_validation_error() from None

    def clean_channels(self) -> Any:
        return self.cleaned_data.get("channels") or []

    def clean_filter(self) -> Any:
        return self.cleaned_data.get("filter") or None

    def clean_application(self) -> Application:
        application: Application = self.cleaned_data["application"]
        if self.instance._state.adding or self.instance.application_id != application.pk:
            applications.check_room_for_endpoint(application)
        return application


@admin.register(Endpoint)
class EndpointAdmin(EndpointAdminBase):
    form = EndpointForm
    list_display = ["id", "application", "url", "enabled_badge", "disabled_reason", "health"]
    list_display += ["last_success_at", "failing_since", "paused_until"]
    list_filter = ["enabled", "application", "fifo"]
    list_select_related = ["application"]
    search_fields = ["id__exact", "url", "=application__uid"]
    search_help_text = "An endpoint id, part of a URL, or an application uid."
    autocomplete_fields = ["application"]
    actions = ["enable_selected", "disable_selected", "recover_selected"]
    readonly_fields = ["id", "secret_summary", "enabled_badge", "disabled_reason", "disabled_at", "health"]
    readonly_fields += ["last_success_at", "failing_since", "paused_until", "deliveries_link", "created_at"]
    readonly_fields += ["updated_at"]
    _BUTTONS = ("rotate-secret", "enable", "disable")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Endpoint]:
        recent = _recent_finished()
        queryset = super().get_queryset(request)
        if on_changelist(self, request):
            queryset = queryset.defer("secret", "previous_secrets")
        return queryset.annotate(
            finished_total=count_of(Delivery.objects.filter(pk__in=recent)),
            succeeded_total=count_of(Delivery.objects.filter(pk__in=recent, status=Status.SUCCEEDED)),
        )

    def get_fieldsets(self, request: HttpRequest, obj: Endpoint | None = None) -> _FieldsetSpec:
        main = ["application", "url", "description", "event_types", "body_format"]
        signing = ["scheme"]
        sections: list[Any] = []
        if obj is not None:
            main.insert(0, "id")
            signing.append("secret_summary")
        sections += [(None, {"fields": main}), ("Routing", {"fields": ["channels", "filter"]})]
        sections.append(("Signing", {"fields": signing}))
        sections.append(("Delivery", {"fields": ["headers", "rate_limit", "fifo", "retry_schedule", "timeout"]}))
        if obj is not None:
            health = ["enabled_badge", "disabled_reason", "disabled_at", "health", "last_success_at"]
            health += ["failing_since", "paused_until", "deliveries_link", "created_at", "updated_at"]
            sections.append(("Health", {"fields": health}))
        return sections

    def save_model(self, request: HttpRequest, obj: Endpoint, form: Any, change: bool) -> None:
        # A new endpoint gets a key of its scheme from the model; a changed scheme rotates to a key of the new one
        # (obj.scheme is already the new scheme here), and the old key keeps signing during the overlap.
        new_key = control.rotate_secret(obj) if change and "scheme" in form.changed_data else None
        if change:
            super().save_model(request, obj, form, change)
        else:
            applications.create_endpoint(obj)
        if new_key is not None:
            mark_rotated(request, obj, new_key)

    def response_change(self, request: HttpRequest, obj: Endpoint) -> HttpResponse:
        response = super().response_change(request, obj)
        if request.session.get(_REVEAL, {}).get("endpoint") == obj.pk:  # the new key is shown on its page
            return HttpResponseRedirect(admin_url(self.admin_site.name, Endpoint, "change", obj.pk))
        return response

    # Per-object buttons ----------------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        buttons = [
            path(f"<path:object_id>/{name}/", self.admin_site.admin_view(view), name=f"{info}_{name.replace('-', '_')}")
            for name, view in zip(self._BUTTONS, [self.rotate_view, self.enable_view, self.disable_view], strict=True)
        ]
        return [*buttons, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        if request.method == "GET" and _REVEAL in request.session:
            endpoint = self.get_object(request, unquote(object_id))
            if endpoint is not None and self.has_view_or_change_permission(request, endpoint):
                context["revealed_secret"] = take_rotated(request, endpoint)
        if self.has_change_permission(request):
            for name in self._BUTTONS:
                context[f"{name.replace('-', '_')}_url"] = admin_url(
                    self.admin_site.name, Endpoint, name.replace("-", "_"), unquote(object_id)
                )
        return super().change_view(request, object_id, form_url, context)

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def rotate(endpoint: Endpoint) -> None:
            secret = control.rotate_secret(endpoint)
            self.log_change(request, endpoint, "Rotated the signing secret.")
            mark_rotated(request, endpoint, secret)

        return object_button(self, request, object_id, rotate, allowed=self.has_change_permission(request))

    def enable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def enable(endpoint: Endpoint) -> None:
            self._enable(request, [endpoint])

        return object_button(self, request, object_id, enable, allowed=self.has_change_permission(request))

    def disable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def disable(endpoint: Endpoint) -> None:
            self._disable(request, [endpoint])

        return object_button(self, request, object_id, disable, allowed=self.has_change_permission(request))

    # Actions ---------------------------------------------------------------------------------------------------

    def _enable(self, request: HttpRequest, endpoints: list[Endpoint]) -> None:
        for endpoint in endpoints:
            control.enable(endpoint)
            self.log_change(request, endpoint, "Enabled.")
        noun = "endpoint" if len(endpoints) == 1 else "endpoints"
        self.message_user(request, f"{len(endpoints)} {noun} enabled: their held deliveries will be sent.")

    def _disable(self, request: HttpRequest, endpoints: list[Endpoint]) -> None:
        for endpoint in endpoints:
            control.disable(endpoint)  # the admin log says who
            self.log_change(request, endpoint, "Disabled.")
        noun = "endpoint" if len(endpoints) == 1 else "endpoints"
        self.message_user(request, f"{len(endpoints)} {noun} disabled: their deliveries are held until enabled.")

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        self._enable(request, list(queryset))

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        self._disable(request, list(queryset))

    @admin.action(description="Recover failed deliveries of the last 24 h", permissions=["change"])
    def recover_selected(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        since = timezone.now() - RECOVER_WINDOW
        count = sum(control.recover(endpoint, since) for endpoint in queryset)
        self.message_user(request, f"{count} failed delivery(ies) of the last 24 h queued to be sent again.")

    # Columns and read-only fields ------------------------------------------------------------------------------

    @admin.display(description="enabled", ordering="enabled")
    def enabled_badge(self, obj: Endpoint) -> SafeString:
        return badge("Enabled", GREEN) if obj.enabled else badge("Disabled", RED)

    @admin.display(description=f"health (last {HEALTH_WINDOW})")
    def health(self, obj: Endpoint) -> SafeString | str:
        total = int(getattr(obj, "finished_total", 0))
        if not total:
            return "-"
        rate = int(getattr(obj, "succeeded_total", 0)) / total
        colour = GREEN if rate >= 0.95 else AMBER if rate >= 0.5 else RED
        title = f"{getattr(obj, 'succeeded_total', 0)} of the last {total} finished deliveries succeeded"
        return format_html('<span title="{}">{}</span>', title, badge(f"{rate:.0%}", colour))

    @admin.display(description="secret")
    def secret_summary(self, obj: Endpoint) -> SafeString:
        now = timezone.now()
        previous = len(jobs.signing_keys(obj, now)) - 1
        text = f"Set ({obj.get_scheme_display()}), never shown here; “Rotate secret” makes a new one and shows it once."
        if previous:
            noun = "secret still signs" if previous == 1 else "secrets still sign"
            return format_html("{}<br>{} previous {} during the rotation overlap.", text, previous, noun)
        return format_html("{}", text)

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: Endpoint) -> SafeString:
        url = admin_url(self.admin_site.name, Delivery, "changelist") + "?" + urlencode({"endpoint__exact": obj.pk})
        return link(url, "Deliveries to this endpoint")
