"""Sources: editable unless declared in settings; secrets are write-only.

The form only parses its input (secrets one per line, masked options kept): the rules are ``Source.clean()``'s, that
is ``hookhub.inbound.source_rules``', run by the ModelForm's model validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hookhub.inbound import sources
from hookhub.inbound.verifiers import available
from hookhub.models import Source

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

    SourceFormBase = forms.ModelForm[Source]
    SourceAdminBase = admin.ModelAdmin[Source]
else:
    SourceFormBase = forms.ModelForm
    SourceAdminBase = admin.ModelAdmin

from .display import MASK, describe_secrets, lines, masked, pretty_json


def verifier_choices(current: str = "") -> list[tuple[str, str]]:
    """The registered verifiers (``hookhub.inbound.verifiers.available``, their one home), and a source's own
    dotted-path verifier if it has one, so that editing that source keeps it."""
    names = list(available())
    if current and current not in names:
        names.append(current)
    return [(name, name) for name in names]


class VerifierChoice(forms.ChoiceField):
    """A select of the registered verifiers whose value is judged by the source rules (``hookhub.inbound.
    source_rules``, via the model), not by the list: a refused value reads the same here as in the API and the CLI."""

    def valid_value(self, value: Any) -> bool:
        return True


class WriteOnlyTextarea(forms.Textarea):
    """Never renders a value back, not even the one just submitted with a form that has errors."""

    def format_value(self, value: Any) -> None:
        return None


class SourceForm(SourceFormBase):
    name = forms.CharField(help_text="1-100 letters, digits, _ or -. Used in handlers: @receiver('<name>', ...).")
    verifier = VerifierChoice(
        choices=verifier_choices,
        help_text="How requests to this source are authenticated. A Verifier subclass of your own is set by its "
        "dotted path in settings or the API.",
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
        self.initial.pop("secrets", None)
        verifier = self.fields["verifier"]
        assert isinstance(verifier, forms.ChoiceField)
        verifier.choices = verifier_choices(self.instance.verifier or "")
        self.initial["allowed_ips"] = "\n".join(self.instance.allowed_ips or [])
        for name in ("options", "confirmer_options"):
            if name in self.fields:
                self.initial[name] = masked(getattr(self.instance, name) or {})
                self.fields[name].help_text = f"A JSON object. {MASK} keeps a stored credential as it is."

    def clean_verifier(self) -> str:
        return str(self.cleaned_data["verifier"]).strip()

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
        text = self.cleaned_data.get("secrets") or ""
        entered = lines(text)  # one per line: blank lines are layout, not secrets
        if text and not entered:
            raise ValidationError(
                "Only whitespace was entered: a blank secret is a key anyone can sign with. "
                "Leave the field empty to keep the current secrets."
            )
        return entered or [str(s) for s in self.instance.secrets or []]

    def clean_rate_limit(self) -> str:
        return str(self.cleaned_data.get("rate_limit") or "").strip()

    def clean_allowed_ips(self) -> list[str]:
        return lines(self.cleaned_data.get("allowed_ips") or "")

    def clean_confirmer(self) -> str:
        return str(self.cleaned_data.get("confirmer") or "").strip()

    def add_error(self, field: Any, error: Any) -> None:
        # Source.clean() names model fields; one this form does not show (forward_event_types) is the form's error.
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            for name in [f for f in error.error_dict if f != NON_FIELD_ERRORS and f not in self.fields]:
                error.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(error.error_dict.pop(name))
        super().add_error(field, error)


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
            ("Reply", {"fields": ["reply"]}),
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
        return sources.receive_url(obj) or "(hookhub.urls is not included in the URLconf)"

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
