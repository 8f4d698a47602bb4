"""The seed receiver: the webhook view hookhub grew from (a token header, then everything inside the request)."""
