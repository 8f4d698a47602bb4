"""Django admin for the receive side.

Sources are edited here unless they are declared in settings (those are read-only). Secrets are write-only: the
admin shows how many there are and how long, never their values. Inbound messages are a read-only record that can be
replayed (an action for many, a button for one) and deleted by superusers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.forms.renderers import BaseRenderer
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString

from hookhub.cli.source import receive_url
from hookhub.inbound import confirmers, processing, sources
from hookhub.inbound.ratelimit import parse_rate
from hookhub.inbound.verifiers import Verifier, available, get_verifier_class
from hookhub.models import InboundMessage, Source

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

    SourceFormBase = forms.ModelForm[Source]
    SourceAdminBase = admin.ModelAdmin[Source]
    MessageAdminBase = admin.ModelAdmin[InboundMessage]
else:
    SourceFormBase = forms.ModelForm
    SourceAdminBase = MessageAdminBase = admin.ModelAdmin

Status = InboundMessage.Status

MASK = "********"
# Option names that hold credentials (the stripe confirmer's api_key, the http confirmer's auth_value, ...).
# ``*_env`` options name an environment variable, which is not a secret.
_SENSITIVE_WORDS = ("key", "secret", "token", "password", "auth_value")
_DISPLAY_LIMIT = 256 * 1024
_BADGE_COLOURS: dict[str, str] = {
    Status.PENDING: "#6c757d",
    Status.PROCESSING: "#0b5ed7",
    Status.RETRYING: "#a15c00",
    Status.PROCESSED: "#198754",
    Status.FAILED: "#dc3545",
    Status.INVALID: "#842029",
    Status.UNCONFIRMED: "#6f42c1",
}
_NOT_REPLAYABLE = [str(Status.PROCESSING), str(Status.INVALID)]


def _is_sensitive(option: str) -> bool:
    name = option.lower()
    return not name.endswith("_env") and any(word in name for word in _SENSITIVE_WORDS)


def masked(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: MASK if v and _is_sensitive(k) else v for k, v in options.items()}


def describe_secrets(secrets: Sequence[str]) -> str:
    if not secrets:
        return "None"
    lengths = ", ".join(str(len(s)) for s in secrets)
    noun = "secret" if len(secrets) == 1 else "secrets"
    return f"{len(secrets)} {noun} ({lengths} characters)"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _pre(text: str) -> SafeString:
    if len(text) <= _DISPLAY_LIMIT:
        return format_html("<pre>{}</pre>", text)
    note = f"Shown: the first {_DISPLAY_LIMIT:,} of {len(text):,} characters."
    return format_html("<p>{}</p><pre>{}</pre>", note, text[:_DISPLAY_LIMIT])


def pretty_json(value: Any) -> SafeString | str:
    if value is None:
        return "-"
    try:
        return _pre(json.dumps(value, indent=2, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return _pre(repr(value))


def pretty_body(body: bytes | memoryview | None) -> SafeString | str:
    raw = bytes(body or b"")
    if not raw:
        return "(empty)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        note = f"Binary body ({len(raw):,} bytes): shown as UTF-8, undecodable bytes replaced."
        return format_html("<p>{}</p>{}", note, _pre(raw.decode("utf-8", errors="replace")))
    with contextlib.suppress(ValueError, RecursionError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return _pre(text)


class VerifierInput(forms.TextInput):
    """Free text (a dotted path is allowed) with the built-in verifier names offered as suggestions."""

    def __init__(self) -> None:
        super().__init__(attrs={"list": "hookhub-verifiers", "autocomplete": "off"})

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        suggestions = format_html_join("", '<option value="{}"></option>', ((n,) for n in available()))
        return format_html(
            '{}<datalist id="hookhub-verifiers">{}</datalist>',
            super().render(name, value, attrs, renderer),
            suggestions,
        )


class WriteOnlyTextarea(forms.Textarea):
    """Never renders a value back, not even the one just submitted with a form that has errors."""

    def format_value(self, value: Any) -> None:
        return None


class SourceForm(SourceFormBase):
    verifier = forms.CharField(
        max_length=200,
        widget=VerifierInput(),
        help_text=f"Built in: {', '.join(available())}; or the dotted path of a Verifier subclass.",
    )
    secrets = forms.CharField(
        required=False,
        strip=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="One per line; every listed secret is accepted (key rotation). "
        "Leave empty to keep the current secrets; enter values to replace them all.",
    )
    allowed_ips = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One address or CIDR per line; empty: any address.",
    )

    class Meta:
        model = Source
        fields = "__all__"  # every editable field; the admin's fieldsets choose and order them

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verifier_class: type[Verifier] | None = None
        self.initial.pop("secrets", None)
        self.initial["allowed_ips"] = "\n".join(self.instance.allowed_ips or [])
        for name in ("options", "confirmer_options"):
            if name in self.fields:
                self.initial[name] = masked(getattr(self.instance, name) or {})
                self.fields[name].help_text = f"A JSON object. {MASK} keeps a stored credential as it is."

    def clean_verifier(self) -> str:
        name = str(self.cleaned_data["verifier"]).strip()
        try:
            self.verifier_class = get_verifier_class(name)
        except (ImproperlyConfigured, ImportError) as exc:
            raise ValidationError(str(exc) or f"Cannot import {name!r}.") from None
        return name

    def _clean_options(self, name: str) -> dict[str, Any]:
        value = self.cleaned_data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("Enter a JSON object, e.g. {}.")
        stored = getattr(self.instance, name) or {}
        return {k: stored.get(k, v) if v == MASK else v for k, v in value.items()}

    def clean_options(self) -> dict[str, Any]:
        return self._clean_options("options")

    def clean_confirmer_options(self) -> dict[str, Any]:
        return self._clean_options("confirmer_options")

    def clean_secrets(self) -> list[str]:
        return _lines(self.cleaned_data.get("secrets") or "") or [str(s) for s in self.instance.secrets or []]

    def clean_rate_limit(self) -> str:
        value = str(self.cleaned_data.get("rate_limit") or "").strip()
        if value:
            try:
                parse_rate(value)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        return value

    def clean_allowed_ips(self) -> list[str]:
        cidrs = _lines(self.cleaned_data.get("allowed_ips") or "")
        try:
            sources.parse_networks(cidrs)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return cidrs

    def clean_confirmer(self) -> str:
        name = str(self.cleaned_data.get("confirmer") or "").strip()
        if name and name not in confirmers.BUILT_IN:
            try:
                func = import_string(name)
            except ImportError:
                func = None
            if not callable(func):
                built_in = ", ".join(confirmers.BUILT_IN)
                raise ValidationError(f"Unknown confirmer {name!r}: use {built_in}, or the dotted path of a callable.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cls = self.verifier_class
        if cls is None or "options" in self.errors or "secrets" in self.errors:
            return cleaned
        secrets: list[str] = cleaned.get("secrets") or []
        try:
            cls(secrets, cleaned.get("options") or {})
        except ImproperlyConfigured as exc:
            # Blame the options only when the same secrets pass with the defaults.
            field = "options" if _builds(cls, secrets) else "secrets"
            self.add_error(field, _scrub(str(exc), secrets))
        return cleaned


def _builds(cls: type[Verifier], secrets: Sequence[str]) -> bool:
    try:
        cls(secrets, {})
    except ImproperlyConfigured:
        return False
    return True


@admin.register(Source)
class SourceAdmin(SourceAdminBase):
    form = SourceForm
    list_display = ["name", "verifier", "enabled", "receive_url_display", "message_count", "secrets_summary"]
    list_filter = ["verifier", "enabled"]
    search_fields = ["name"]
    readonly_fields = [
        "receive_url_display",
        "message_count_display",
        "secrets_summary",
        "options_display",
        "confirmer_options_display",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        return super().get_queryset(request).annotate(message_count=Count("messages"))

    def has_change_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        return not (obj is not None and obj.managed) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        return not (obj is not None and obj.managed) and super().has_delete_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Source | None = None) -> _FieldsetSpec:
        view_only = obj is not None and not self.has_change_permission(request, obj)
        main = ["name", "enabled", "slug"]
        verification = ["verifier", "options", "secrets_summary", "secrets"]
        confirmation = ["confirmer", "confirmer_options"]
        if obj is None:
            verification.remove("secrets_summary")
        else:
            main += ["receive_url_display", "message_count_display", "created_at", "updated_at"]
        if view_only:
            # The read-only page shows model values as they are: never the secrets, only masked options.
            verification = ["verifier", "options_display", "secrets_summary"]
            confirmation = ["confirmer", "confirmer_options_display"]
        return [
            (None, {"fields": tuple(main)}),
            ("Verification", {"fields": tuple(verification)}),
            ("Limits", {"fields": ["rate_limit", "allowed_ips", "max_body_size", "retention_days"]}),
            ("Confirmation", {"fields": tuple(confirmation), "classes": ["collapse"]}),
        ]

    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        super().delete_model(request, obj)
        sources.clear_cache()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        super().delete_queryset(request, queryset)
        sources.clear_cache()

    @admin.display(description="receive URL")
    def receive_url_display(self, obj: Source) -> str:
        try:
            return receive_url(obj)
        except NoReverseMatch:
            return "(hookhub.urls is not included in the URLconf)"

    @admin.display(description="messages", ordering="message_count")
    def message_count(self, obj: Source) -> int:
        return int(getattr(obj, "message_count", 0))

    @admin.display(description="messages")
    def message_count_display(self, obj: Source) -> SafeString:
        url = reverse(f"{self.admin_site.name}:hookhub_inboundmessage_changelist") + f"?source__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, self.message_count(obj))

    @admin.display(description="secrets")
    def secrets_summary(self, obj: Source) -> str:
        return describe_secrets(sources.secrets_of(obj))

    @admin.display(description="options")
    def options_display(self, obj: Source) -> SafeString | str:
        return pretty_json(masked(obj.options or {}))

    @admin.display(description="confirmer options")
    def confirmer_options_display(self, obj: Source) -> SafeString | str:
        return pretty_json(masked(obj.confirmer_options or {}))


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
        queryset = super().get_queryset(request)
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
        headers = obj.headers or {}
        if not headers:
            return "-"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            sorted((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in headers.items()),
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description="payload")
    def payload_display(self, obj: InboundMessage) -> SafeString | str:
        return pretty_json(obj.payload)

    @admin.display(description="confirmed payload")
    def confirmed_payload_display(self, obj: InboundMessage) -> SafeString | str:
        return pretty_json(obj.confirmed_payload)

    @admin.display(description="last error")
    def last_error_display(self, obj: InboundMessage) -> SafeString | str:
        return _pre(obj.last_error) if obj.last_error else "-"

    @admin.display(description="traceback")
    def traceback_display(self, obj: InboundMessage) -> SafeString | str:
        return _pre(obj.traceback) if obj.traceback else "-"
