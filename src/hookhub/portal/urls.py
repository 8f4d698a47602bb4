"""The customer portal's URLs: include under any prefix, e.g. ``path("portal/", include("hookhub.portal.urls"))``."""

from django.urls import path

from . import access, catalogue, contact, deliveries, endpoints

app_name = "hookhub_portal"

urlpatterns = [
    path("login/<str:token>/", access.login, name="login"),
    path("logout/", access.logout, name="logout"),
    path("", endpoints.endpoint_list, name="endpoints"),
    path("endpoints/new/", endpoints.endpoint_create, name="endpoint-create"),
    path("endpoints/<str:endpoint_id>/", endpoints.endpoint_detail, name="endpoint"),
    path("endpoints/<str:endpoint_id>/edit/", endpoints.endpoint_edit, name="endpoint-edit"),
    path("endpoints/<str:endpoint_id>/enable/", endpoints.endpoint_enable, name="endpoint-enable"),
    path("endpoints/<str:endpoint_id>/disable/", endpoints.endpoint_disable, name="endpoint-disable"),
    path("endpoints/<str:endpoint_id>/rotate-secret/", endpoints.endpoint_rotate_secret, name="endpoint-rotate"),
    path("endpoints/<str:endpoint_id>/secret/", endpoints.endpoint_reveal_secret, name="endpoint-secret"),
    path("endpoints/<str:endpoint_id>/test/", endpoints.endpoint_send_test, name="endpoint-test"),
    path("alert-emails/", contact.contact_edit, name="contact"),
    path("endpoints/<str:endpoint_id>/replay-missing/", endpoints.endpoint_replay_missing, name="endpoint-replay"),
    path("deliveries/", deliveries.delivery_list, name="deliveries"),
    path("deliveries/<int:delivery_id>/", deliveries.delivery_detail, name="delivery"),
    path("deliveries/<int:delivery_id>/resend/", deliveries.delivery_resend, name="delivery-resend"),
    path("catalogue/", catalogue.catalogue_page, name="catalogue"),
    path("catalogue/openapi.json", catalogue.catalogue_openapi, name="catalogue-openapi"),
]
