"""The customer's alert email: who hears (from ``hookhub.alerts``) when one of their endpoints is disabled or keeps
failing. Shown on the endpoint list, changed on a page of its own, judged by ``rules.check_contact_email``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.models import Application
from hookhub.outbound import rules

from .access import portal_view
from .pages import flash


class ContactForm(forms.Form):
    # A plain text field: the rule judges it, in the same words as every other front door.
    contact_email = forms.CharField(
        required=False,
        strip=False,
        widget=forms.EmailInput(attrs={"placeholder": "ops@example.com", "autocomplete": "email"}),
    )

    def clean_contact_email(self) -> str:
        try:
            return rules.check_contact_email(self.cleaned_data["contact_email"])
        except Refused as exc:
            raise exc.as_validation_error() from None


@require_http_methods(["GET", "POST"])
@csrf_protect
@portal_view
def contact_edit(request: HttpRequest, application: Application) -> HttpResponse:
    if request.method == "POST":
        form = ContactForm(request.POST)
        if form.is_valid():
            email = form.cleaned_data["contact_email"]
            # Only this field: another one of the application's may have changed meanwhile.
            Application.objects.filter(pk=application.pk).update(contact_email=email)
            text = f"Saved. Alerts go to {email}." if email else "Saved. No alert emails go to you now."
            flash(request, "contact", text)
            return redirect("hookhub_portal:endpoints")
    else:
        form = ContactForm(initial={"contact_email": application.contact_email})
    context: dict[str, Any] = {
        "application": application,
        "form": form,
        "interval_hours": f"{conf.ALERT_INTERVAL / 3600:g}",
        "nav": "endpoints",
    }
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "hookhub/portal/contact.html", context, status=status)
