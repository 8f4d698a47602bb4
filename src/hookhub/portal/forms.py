"""The endpoint form: URL, description, subscriptions, channels and payload filter, delivery settings (retry schedule,
timeout), validated by the rules of ``hookhub.outbound.rules``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from hookhub import payloads
from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.models import Endpoint, EventType
from hookhub.outbound import rules, schedule

ALL, CHOSEN = "all", "chosen"


@dataclass(frozen=True)
class Choice:
    """One checkbox: a catalogue event type, or a pattern the endpoint already has (kept, never silently lost)."""

    name: str
    description: str = ""
    example: str = ""
    pattern: bool = False


def choices_for(endpoint: Endpoint | None) -> list[Choice]:
    current = set(endpoint.event_types if endpoint else [])
    catalogue = [
        Choice(e.name, e.description, payloads.display_json(e.example) if e.example is not None else "")
        for e in EventType.objects.order_by("name")
        if not e.deprecated or e.name in current
    ]
    known = {c.name for c in catalogue}
    extra = [Choice(name, pattern=True) for name in sorted(current - known)]
    return catalogue + extra


class EndpointForm(forms.Form):
    MODEL_FIELDS = ("url", "description", "event_types", "channels", "filter", "retry_schedule", "timeout")

    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks", "autocomplete": "url"}),
    )
    description = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"placeholder": "What this endpoint is for"})
    )
    events = forms.ChoiceField(choices=[(ALL, "All events"), (CHOSEN, "Only the events chosen below")], initial=ALL)
    event_types = forms.MultipleChoiceField(required=False)
    channels = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(attrs={"placeholder": "eu, project_1337"})
    )
    filter = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "placeholder": '{"amount": {"$gte": 100}}'}),
    )
    # Text, judged by the rules (not Django's number field), so the portal refuses with the API's and CLI's words.
    retry_schedule = forms.CharField(max_length=500, required=False)
    timeout = forms.CharField(max_length=50, required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"}))

    def __init__(self, *args: Any, endpoint: Endpoint | None = None, **kwargs: Any) -> None:
        if endpoint is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "url": endpoint.url,
                "description": endpoint.description,
                "events": CHOSEN if endpoint.event_types else ALL,
                "event_types": list(endpoint.event_types),
                "retry_schedule": schedule.format_schedule(endpoint.retry_schedule or []),
                "timeout": f"{endpoint.timeout:g}" if endpoint.timeout is not None else "",
                "channels": ", ".join(endpoint.channels or []),
                "filter": json.dumps(endpoint.filter, indent=2, ensure_ascii=False) if endpoint.filter else "",
            }
        super().__init__(*args, **kwargs)
        defaults = self.fields["retry_schedule"].widget.attrs, self.fields["timeout"].widget.attrs
        defaults[0]["placeholder"] = f"{schedule.format_schedule(conf.RETRY_SCHEDULE)} (the default)"
        defaults[1]["placeholder"] = f"{conf.DELIVERY_TIMEOUT:g} (the default)"
        self.choices = choices_for(endpoint)
        field = self.fields["event_types"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(c.name, c.name) for c in self.choices]

    def clean_url(self) -> str:
        return self._ruled(rules.check_url, self.cleaned_data["url"])

    def clean_description(self) -> str:
        return self._ruled(rules.check_description, self.cleaned_data["description"])

    def clean_retry_schedule(self) -> list[float] | None:
        return self._ruled(rules.check_retry_schedule, self.cleaned_data["retry_schedule"])

    def clean_timeout(self) -> float | None:
        text = self.cleaned_data["timeout"].strip().removesuffix("s").strip()
        try:
            value: Any = float(text) if text else None
        except ValueError:
            value = self.cleaned_data["timeout"]  # the rule says what is wrong with it
        return self._ruled(rules.check_timeout, value)

    def clean_channels(self) -> list[str]:
        names = [c.strip() for c in self.cleaned_data["channels"].split(",") if c.strip()]
        return self._ruled(rules.check_channels, names)

    def clean_filter(self) -> dict[str, Any] | None:
        text = self.cleaned_data["filter"].strip()
        if not text:
            return None
        try:
            spec = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        return self._ruled(rules.check_filter, spec)

    def _ruled[T](self, rule: Callable[[Any], T], value: Any) -> T:
        try:
            return rule(value)
        except Refused as exc:
            raise exc.as_validation_error() from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("events") == CHOSEN and not cleaned.get("event_types") and "event_types" not in self.errors:
            self.add_error("event_types", "Choose at least one event type, or subscribe to all events.")
        return cleaned

    def selected(self) -> set[str]:
        """The checked boxes, as submitted or as initially set: what the template ticks."""
        if self.is_bound:
            return set(self.data.getlist("event_types")) if hasattr(self.data, "getlist") else set()
        return set(self.initial.get("event_types", []))

    def events_mode(self) -> str:
        return str(self.data.get("events", ALL) if self.is_bound else self.initial.get("events", ALL))

    def apply(self, endpoint: Endpoint) -> Endpoint:
        data = self.cleaned_data
        endpoint.url = data["url"]
        endpoint.description = data["description"]
        chosen = set(data["event_types"]) if data["events"] == CHOSEN else set()
        endpoint.event_types = [c.name for c in self.choices if c.name in chosen]  # the page's order
        endpoint.retry_schedule, endpoint.timeout = data["retry_schedule"], data["timeout"]
        endpoint.channels = data["channels"]
        endpoint.filter = data["filter"]
        return endpoint
