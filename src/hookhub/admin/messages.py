"""Inbound messages: a read-only record, replayable, deletable by superusers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hookhub.inbound import processing
from hookhub.models import InboundMessage

if TYPE_CHECKING:
    MessageAdminBase = admin.ModelAdmin[InboundMessage]
else:
    MessageAdminBase = admin.ModelAdmin

from .display import headers_table, pre, pretty_body, pretty_json

Status = InboundMessage.Status

_BADGE_COLOURS: dict[str, str] = {
    Status.PENDING: "#6c757d",
    Status.PROCESSING: "#0b5ed7",
    Status.RETRYING: "#a15c00",
    Status.PROCESSED: "#198754",
    Status.FAILED: "#dc3545",
    Status.INVALID: "#842029",
    Status.UNCONFIRMED: "#6f42c1",
    Status.STALE: "#495057",
}
_NOT_REPLAYABLE = [str(Status.PROCESSING), str(Status.INVALID)]


@admin.register(InboundMessage)
class InboundMessageAdmin(MessageAdminBase):
    list_display = ["id", "source", "event_type", "status_badge", "external_id", "received_at", "attempts"]
    list_filter = ["source", "status", "event_type"]
    list_select_related = ["source"]
    date_hierarchy = "received_at"
    show_full_result_count = False  # one COUNT(*) over a large table per page is enough
    search_fields = ["id__exact", "external_id__exact", "event_type__istartswith"]
    search_help_text = "A message id, an external id, or the start of an event type."
    actions = ["replay_selected"]
    fieldsets = [
        (None, {"fields": ["id", "source", "status_badge", "event_type", "external_id"]}),
        ("Processing", {"fields": ["attempts", "next_attempt_at", "processed_at", "locked_by", "locked_until"]}),
        ("Request", {"fields": ["received_at", "remote_addr", "content_type", "body_display", "headers_table"]}),
        ("Payload", {"fields": ["payload_display", "confirmed_payload_display"]}),
        ("Error", {"fields": ["last_error_display", "traceback_display"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)
    _LARGE_FIELDS = ("body", "headers", "payload", "confirmed_payload", "traceback")

    def get_queryset(self, request: HttpRequest) -> QuerySet[InboundMessage]:
        queryset = super().get_queryset(request).select_related("source")  # for its title (``__str__``)
        match = request.resolver_match
        if match is not None and match.url_name == f"{self.opts.app_label}_{self.opts.model_name}_changelist":
            queryset = queryset.defer(*self._LARGE_FIELDS)
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: InboundMessage | None = None) -> bool:
        return False  # a record of what was received: the change page is for viewing only

    def has_delete_permission(self, request: HttpRequest, obj: InboundMessage | None = None) -> bool:
        return bool(request.user.is_superuser)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        codename = get_permission_codename("change", self.opts)
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_replay"
        replay = path("<path:object_id>/replay/", self.admin_site.admin_view(self.replay_view), name=name)
        return [replay, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        if self.has_replay_permission(request):
            context["replay_url"] = reverse(f"{self.admin_site.name}:hookhub_inboundmessage_replay", args=[object_id])
            context["not_replayable"] = _NOT_REPLAYABLE
        return super().change_view(request, object_id, form_url, context)

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_replay_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No inbound message with id {object_id!r}.")
        if processing.replay([obj.pk]):
            self.message_user(request, f"Message {obj.pk} is queued to be processed again.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"Message {obj.pk} was not replayed: it is being processed or its body is invalid.",
                messages.WARNING,
            )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:hookhub_inboundmessage_change", args=[quote(obj.pk)])
        )

    @admin.action(description="Replay selected messages", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = processing.replay(ids)
        self.message_user(request, f"{count} of {len(ids)} message(s) queued to be processed again.", messages.SUCCESS)
        if count < len(ids):
            self.message_user(
                request, f"{len(ids) - count} skipped: being processed, or with an invalid body.", messages.WARNING
            )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: InboundMessage) -> SafeString:
        colour = _BADGE_COLOURS.get(obj.status, "#6c757d")
        return format_html(
            '<span style="background:{};color:#fff;padding:1px 8px;border-radius:8px;white-space:nowrap">{}</span>',
            colour,
            obj.get_status_display(),
        )

    @admin.display(description="body")
    def body_display(self, obj: InboundMessage) -> SafeString | str:
        return pretty_body(obj.body)

    @admin.display(description="headers")
    def headers_table(self, obj: InboundMessage) -> SafeString | str:
        return headers_table(obj.headers)

    @admin.display(description="payload")
    def payload_display(self, obj: InboundMessage) -> SafeString | str:
        return pretty_json(obj.payload)

    @admin.display(description="confirmed payload")
    def confirmed_payload_display(self, obj: InboundMessage) -> SafeString | str:
        return pretty_json(obj.confirmed_payload)

    @admin.display(description="last error")
    def last_error_display(self, obj: InboundMessage) -> SafeString | str:
        return pre(obj.last_error) if obj.last_error else "-"

    @admin.display(description="traceback")
    def traceback_display(self, obj: InboundMessage) -> SafeString | str:
        return pre(obj.traceback) if obj.traceback else "-"
