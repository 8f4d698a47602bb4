"""Django admin for the send side.

Applications and event types are edited here (an event type declared in code or settings is shown read-only).
Endpoints too, except their secrets: the admin says that a secret exists and how many previous ones still sign, and
reveals a secret only once, when an operator rotates it. Enabling, disabling and recovering an endpoint go through
``hookhub.outbound.control``, as the API does. Messages, deliveries and their attempts are a read-only record;
deliveries can be resent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from hookhub import payloads
from hookhub.exceptions import Refused
from hookhub.models import Application, Delivery, Endpoint, EventType, Message
from hookhub.outbound import backlog, catalogue, schemas

from . import outbound_deliveries, outbound_endpoints
from .outbound_common import JSON_TEXTAREA, PrettyJSONField, admin_url, count_of, link, on_changelist

if TYPE_CHECKING:
    ApplicationAdminBase = admin.ModelAdmin[Application]
    EventTypeAdminBase = admin.ModelAdmin[EventType]
    EventTypeFormBase = forms.ModelForm[EventType]
else:
    ApplicationAdminBase = admin.ModelAdmin
    EventTypeAdminBase = admin.ModelAdmin
    EventTypeFormBase = forms.ModelForm

__all__ = ["ApplicationAdmin", "EventTypeAdmin", "outbound_deliveries", "outbound_endpoints"]

JSON_FIELDS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.JSONField: {"form_class": PrettyJSONField, "widget": JSON_TEXTAREA}
}


#: Rows of the "Busiest applications" box above the application list.
BUSIEST_SHOWN = 10


@admin.register(Application)
class ApplicationAdmin(ApplicationAdminBase):
    list_display = ["uid", "name", "endpoint_count", "message_count", "due", "in_flight", "failing", "created_at"]
    search_fields = ["uid", "name", "contact_email"]
    readonly_fields = ["endpoint_count", "message_count", "created_at"]
    fields = ["uid", "name", "contact_email", "metadata", "endpoint_count", "message_count", "created_at"]
    formfield_overrides = JSON_FIELDS

    def formfield_for_dbfield(self, db_field: models.Field[Any, Any], request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "contact_email":
            # A plain text field: the model's rule (hookhub.outbound.rules) judges it, with every front door's words.
            widget = forms.EmailInput(attrs={"class": "vTextField"})
            return forms.CharField(required=False, label="Contact email", help_text=db_field.help_text, widget=widget)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                endpoint_total=count_of(Endpoint.objects.filter(application=OuterRef("pk"))),
                message_total=count_of(Message.objects.filter(application=OuterRef("pk"))),
                **self._backlog_columns(request),
            )
        )

    def _backlog_columns(self, request: HttpRequest) -> dict[str, Any]:
        """The list's due / in flight / failing: correlated counts, evaluated for the rows of one page only."""
        if not on_changelist(self, request):
            return {}
        now = timezone.now()
        deliveries = Delivery.objects.filter(endpoint__application=OuterRef("pk"))
        return {
            "due_total": count_of(deliveries.filter(backlog.due_filter(now))),
            "in_flight_total": count_of(deliveries.filter(backlog.in_flight_filter(now))),
            "failing_total": count_of(Endpoint.objects.filter(application=OuterRef("pk"), failing_since__isnull=False)),
        }

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        busiest = backlog.busiest(BUSIEST_SHOWN)
        return super().changelist_view(request, {**(extra_context or {}), "busiest_applications": busiest})

    @admin.display(description="due")
    def due(self, obj: Application) -> int:
        return int(getattr(obj, "due_total", 0))

    @admin.display(description="in flight")
    def in_flight(self, obj: Application) -> int:
        return int(getattr(obj, "in_flight_total", 0))

    @admin.display(description="failing endpoints")
    def failing(self, obj: Application) -> int:
        return int(getattr(obj, "failing_total", 0))

    @admin.display(description="endpoints", ordering="endpoint_total")
    def endpoint_count(self, obj: Application) -> SafeString:
        url = admin_url(self.admin_site.name, Endpoint, "changelist") + f"?application__id__exact={obj.pk}"
        return link(url, getattr(obj, "endpoint_total", 0))

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, obj: Application) -> SafeString:
        url = admin_url(self.admin_site.name, Message, "changelist") + f"?application__id__exact={obj.pk}"
        return link(url, getattr(obj, "message_total", 0))


class EventTypeForm(EventTypeFormBase):
    class Meta:
        model = EventType
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "version" in self.fields:  # left empty: kept (1 for a new type)
            self.fields["version"].required = False

    def clean_version(self) -> int:
        version = self.cleaned_data.get("version")
        if version and version > catalogue.MAX_VERSION:
            raise ValidationError(f"Enter a version from 1 to {catalogue.MAX_VERSION:,}.")
        return int(version) if version else (self.instance.version or 1)

    def clean_example(self) -> Any:
        try:  # the example is shown in the portal and is a payload like any other
            return payloads.check_payload(self.cleaned_data.get("example"), "example")
        except payloads.Unstorable as exc:
            raise ValidationError(f"{exc}.") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        name = cleaned.get("name") or self.instance.name
        try:  # the admin shows a declared type read-only; this covers adding one by its name
            catalogue.refuse_change(name, self.instance if self.instance.pk else None)
        except Refused as exc:
            self.add_error(None, exc.message)
        if "schema" not in self.errors and "example" not in self.errors:
            try:
                schemas.check(cleaned.get("schema"), cleaned.get("example"))
            except schemas.SchemaRefused as exc:
                self.add_error(exc.field, exc.message)
        return cleaned


@admin.register(EventType)
class EventTypeAdmin(EventTypeAdminBase):
    form = EventTypeForm
    list_display = ["name", "version", "deprecated", "from_code", "has_schema", "created_at"]
    list_filter = ["deprecated", "from_code"]
    search_fields = ["name", "description"]
    fields = ["name", "declared", "version", "description", "deprecated", "schema", "example", "created_at"]
    readonly_fields = ["declared", "created_at"]
    formfield_overrides = JSON_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: EventType | None = None) -> bool:
        return not (obj is not None and obj.from_code) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: EventType | None = None) -> bool:
        return not (obj is not None and obj.from_code) and super().has_delete_permission(request, obj)

    @admin.display(description="declared in")
    def declared(self, obj: EventType) -> str:
        try:
            catalogue.refuse_change(obj.name, obj if obj.pk else None)
        except Refused as exc:
            return exc.message
        return "Not declared in code: edit it here."

    @admin.display(description="schema", boolean=True)
    def has_schema(self, obj: EventType) -> bool:
        return bool(obj.schema)  # publish.validate ignores an empty schema too
