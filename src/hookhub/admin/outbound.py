"""Django admin for the send side.

Applications and event types are edited here. Endpoints too, except their secrets: the admin says that a secret
exists and how many previous ones still sign, and reveals a secret only once, when an operator rotates it. Enabling,
disabling and recovering an endpoint go through ``hookhub.outbound.deliveries``, as the API does. Messages,
deliveries and their attempts are a read-only record; deliveries can be resent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsonschema
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from hookhub import payloads
from hookhub.models import Application, Endpoint, EventType, Message

from . import outbound_deliveries, outbound_endpoints
from .outbound_common import JSON_TEXTAREA, PrettyJSONField, admin_url, count_of, link

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


@admin.register(Application)
class ApplicationAdmin(ApplicationAdminBase):
    list_display = ["uid", "name", "endpoint_count", "message_count", "created_at"]
    search_fields = ["uid", "name"]
    readonly_fields = ["endpoint_count", "message_count", "created_at"]
    fields = ["uid", "name", "metadata", "endpoint_count", "message_count", "created_at"]
    formfield_overrides = JSON_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                endpoint_total=count_of(Endpoint.objects.filter(application=OuterRef("pk"))),
                message_total=count_of(Message.objects.filter(application=OuterRef("pk"))),
            )
        )

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

    def clean_schema(self) -> Any:
        schema = self.cleaned_data.get("schema")
        if schema is None:
            return None
        if not isinstance(schema, dict):
            raise ValidationError('Enter a JSON Schema object, e.g. {"type": "object"}; or leave it empty.')
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValidationError(f"Not a valid JSON Schema (draft 2020-12): {exc.message}") from None
        return schema

    def clean_example(self) -> Any:
        try:  # the example is shown in the portal and is a payload like any other
            return payloads.check_payload(self.cleaned_data.get("example"), "example")
        except payloads.Unstorable as exc:
            raise ValidationError(f"{exc}.") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        schema, example = cleaned.get("schema"), cleaned.get("example")
        if schema and example is not None and "schema" not in self.errors:
            validator = jsonschema.Draft202012Validator(schema)
            error = jsonschema.exceptions.best_match(validator.iter_errors(example))
            if error is not None:
                path = "/".join(str(p) for p in error.absolute_path)
                where = f" at /{path}" if path else ""
                self.add_error("example", f"The example does not match the schema{where}: {error.message}")
        return cleaned


@admin.register(EventType)
class EventTypeAdmin(EventTypeAdminBase):
    form = EventTypeForm
    list_display = ["name", "deprecated", "has_schema", "created_at"]
    list_filter = ["deprecated"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "deprecated", "schema", "example", "created_at"]
    readonly_fields = ["created_at"]
    formfield_overrides = JSON_FIELDS

    @admin.display(description="schema", boolean=True)
    def has_schema(self, obj: EventType) -> bool:
        return bool(obj.schema)  # publish.validate ignores an empty schema too
