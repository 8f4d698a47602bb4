"""Messages and deliveries: a read-only record with each HTTP attempt; deliveries can be resent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.db.models import Model, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from hookhub.conf import conf
from hookhub.models import Attempt, Delivery, Endpoint, EventType, Message
from hookhub.outbound import control

from .display import headers_table, pre, pretty_body, pretty_json
from .outbound_common import (
    DELIVERY_COLOURS,
    admin_url,
    badge,
    count_of,
    delivery_badge,
    has_model_perm,
    link,
    object_button,
    on_changelist,
)

if TYPE_CHECKING:
    MessageAdminBase = admin.ModelAdmin[Message]
    DeliveryAdminBase = admin.ModelAdmin[Delivery]
    DeliveryInlineBase = admin.TabularInline[Delivery, Message]
    AttemptInlineBase = admin.StackedInline[Attempt, Delivery]
else:
    MessageAdminBase = admin.ModelAdmin
    DeliveryAdminBase = admin.ModelAdmin
    DeliveryInlineBase = admin.TabularInline
    AttemptInlineBase = admin.StackedInline

Status = Delivery.Status
_ENDPOINT_SECRETS = ("endpoint__secret", "endpoint__previous_secrets")


class ReadOnlyMixin:
    """A record of what happened: viewable, never added or edited; superusers may delete."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)


class EventTypeFilter(admin.SimpleListFilter):
    """Choices from the EventType table, which is small; a DISTINCT over every message would read them all."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = list(EventType.objects.values_list("name", flat=True))
        current = self.value()
        if current and current not in names:
            names.append(current)
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(event_type=value) if value else queryset


class DeliveryInline(ReadOnlyMixin, DeliveryInlineBase):
    model = Delivery
    fields = readonly_fields = (
        "delivery_link", "endpoint_link", "status_badge", "attempts", "last_status_code", "next_attempt_at",
        "finished_at",
    )  # fmt: skip
    extra = 0

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("endpoint").defer(*_ENDPOINT_SECRETS)

    @admin.display(description="delivery")
    def delivery_link(self, obj: Delivery) -> SafeString:
        return link(admin_url(self.admin_site.name, Delivery, "change", obj.pk), obj.pk)

    @admin.display(description="endpoint")
    def endpoint_link(self, obj: Delivery) -> SafeString:
        return link(admin_url(self.admin_site.name, Endpoint, "change", obj.endpoint_id), obj.endpoint)

    @admin.display(description="status")
    def status_badge(self, obj: Delivery) -> SafeString:
        return delivery_badge(obj)


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, MessageAdminBase):
    list_display = ["id", "application", "event_type", "created_at", "delivery_counts"]
    list_filter = [EventTypeFilter, "application"]
    list_select_related = ["application"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # one COUNT(*) over a large table per page is enough
    search_fields = ["id__exact", "idempotency_key__exact"]
    search_help_text = "A message id or an idempotency key."
    fields = readonly_fields = (
        "id", "application", "event_type", "channels", "idempotency_key", "created_at", "payload_display",
    )  # fmt: skip
    inlines = [DeliveryInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        queryset = super().get_queryset(request)
        if on_changelist(self, request):
            counts = {
                f"{status}_count": count_of(Delivery.objects.filter(message=OuterRef("pk"), status=status))
                for status in Status
            }
            queryset = queryset.defer("payload").annotate(**counts)
        return queryset

    @admin.display(description="deliveries")
    def delivery_counts(self, obj: Message) -> SafeString | str:
        counts = [(getattr(obj, f"{status}_count", 0), status) for status in Status]
        shown = [(badge(f"{n} {status.label.lower()}", DELIVERY_COLOURS[status]),) for n, status in counts if n]
        return format_html_join(" ", "{}", shown) if shown else "none"

    @admin.display(description="payload")
    def payload_display(self, obj: Message) -> SafeString | str:
        if obj.payload_purged:
            days = conf.PAYLOAD_RETENTION_DAYS
            return f"Purged: payloads are emptied after {days} days once every delivery has finished."
        return pretty_json(obj.payload)


class AttemptInline(ReadOnlyMixin, AttemptInlineBase):
    model = Attempt
    fields = readonly_fields = (
        "created_at", "duration", "url", "response_status", "error_display", "request_headers_display",
        "response_headers_display", "response_body_display",
    )  # fmt: skip
    extra = 0

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="duration")
    def duration(self, obj: Attempt) -> str:
        return f"{obj.duration_ms:,} ms"

    @admin.display(description="error")
    def error_display(self, obj: Attempt) -> SafeString | str:
        return pre(obj.error) if obj.error else "-"

    @admin.display(description="request headers")
    def request_headers_display(self, obj: Attempt) -> SafeString | str:
        return headers_table(obj.request_headers)  # webhook-signature is stored redacted

    @admin.display(description="response headers")
    def response_headers_display(self, obj: Attempt) -> SafeString | str:
        return headers_table(obj.response_headers)

    @admin.display(description="response body")
    def response_body_display(self, obj: Attempt) -> SafeString | str:
        return pretty_body(obj.response_body.encode())


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyMixin, DeliveryAdminBase):
    # Few, narrow columns, so that the status is on screen at 1366 px: the message is its event type (a link to it),
    # the endpoint is its URL cut short (the whole of it on hover), and one column says when it finished or is due.
    list_display = ["id", "message_display", "endpoint_display", "status_badge", "tries", "http", "when"]
    list_filter = ["status", "endpoint__application"]
    list_select_related = ["message", "endpoint"]
    show_full_result_count = False
    search_fields = ["id__exact", "message__id__exact", "endpoint__id__exact"]
    search_help_text = "A delivery id, message id or endpoint id."
    actions = ["resend_selected"]
    fieldsets = [
        (None, {"fields": ["id", "message_link", "event_type", "application", "endpoint", "status_badge"]}),
        ("Progress", {"fields": ["attempts", "next_attempt_at", "last_status_code", "last_error_display"]}),
        (None, {"fields": ["created_at", "finished_at", "locked_by", "locked_until"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)
    inlines = [AttemptInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        queryset = super().get_queryset(request)
        if on_changelist(self, request):
            queryset = queryset.select_related("message", "endpoint").defer("message__payload")
        else:
            queryset = queryset.select_related("message__application", "endpoint")
        return queryset.defer(*_ENDPOINT_SECRETS)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(self, request, "change")

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_resend"
        resend = path("<path:object_id>/resend/", self.admin_site.admin_view(self.resend_view), name=name)
        return [resend, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        if self.has_resend_permission(request):
            context["resend_url"] = admin_url(self.admin_site.name, Delivery, "resend", unquote(object_id))
        return super().change_view(request, object_id, form_url, context)

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def resend(delivery: Delivery) -> None:
            if control.resend([delivery]):
                self.log_change(request, delivery, "Resent.")
                self.message_user(request, f"Delivery {delivery.pk} is queued to be sent again.", messages.SUCCESS)
            else:
                self.message_user(request, f"Delivery {delivery.pk} is being sent: not resent.", messages.WARNING)

        return object_button(self, request, object_id, resend, allowed=self.has_resend_permission(request))

    @admin.action(description="Resend selected deliveries", permissions=["resend"])
    def resend_selected(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = control.resend(ids)
        self.message_user(request, f"{count} of {len(ids)} delivery(ies) queued to be sent again.", messages.SUCCESS)
        if count < len(ids):
            self.message_user(request, f"{len(ids) - count} skipped: being sent right now.", messages.WARNING)

    @admin.display(description="message", ordering="message")
    def message_link(self, obj: Delivery) -> SafeString:
        return link(admin_url(self.admin_site.name, Message, "change", obj.message_id), obj.message_id)

    @admin.display(description="message")
    def message_display(self, obj: Delivery) -> SafeString:
        return link(admin_url(self.admin_site.name, Message, "change", obj.message_id), obj.message.event_type)

    @admin.display(description="endpoint", ordering="endpoint")
    def endpoint_display(self, obj: Delivery) -> SafeString:
        # Django's Truncator, not a helper of ours (a shared one is planned in hookhub.text).
        url = obj.endpoint.url
        return format_html('<span title="{}">{}</span>', url, Truncator(url.removeprefix("https://")).chars(32))

    @admin.display(description="HTTP", ordering="last_status_code")
    def http(self, obj: Delivery) -> str:
        return str(obj.last_status_code or "-")

    @admin.display(description="tries", ordering="attempts")
    def tries(self, obj: Delivery) -> int:
        return obj.attempts

    @admin.display(description="when")
    def when(self, obj: Delivery) -> str:
        moment = obj.finished_at or obj.next_attempt_at
        return date_format(timezone.localtime(moment), "j M H:i") if moment else "-"

    @admin.display(description="event type")
    def event_type(self, obj: Delivery) -> str:
        return obj.message.event_type

    @admin.display(description="application")
    def application(self, obj: Delivery) -> SafeString:
        app = obj.message.application
        return link(admin_url(self.admin_site.name, type(app), "change", app.pk), app)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery) -> SafeString:
        return delivery_badge(obj)

    @admin.display(description="last error")
    def last_error_display(self, obj: Delivery) -> SafeString | str:
        return pre(obj.last_error) if obj.last_error else "-"
