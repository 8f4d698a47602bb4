"""``hookhub tail``: ``feed`` reads the traffic from the database, ``render`` shows it, ``command`` runs the loop."""
