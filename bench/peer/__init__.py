"""The peer: django-outbound-webhooks 0.4 (on django-domain-events), set up as its documentation says.

An event class, one endpoint registered with ``register_endpoint`` on the same sink hookhub delivers to, events fired
inside transactions, and the documented relay (``manage.py deliver_events``) doing the deliveries, on the same
tuned SQLite as hookhub. Only ``ALLOW_PRIVATE_ADDRESSES`` is changed from its defaults, because the sink is on
127.0.0.1 (hookhub gets the same exemption).
"""
