"""Baselines for the receive side, served exactly as hookhub is (granian WSGI, the same workers and threads, the same
middleware, the same database tuning: WAL, IMMEDIATE transactions, persistent connections).

- ``seed``: the seed receiver, the naive Django webhook view hookhub grew from: compare a token, delete old
  messages, ``json.loads``, one ORM insert, then process the payload in an (empty) atomic block, all in the request.
- ``ceiling``: a view that does nothing, answering 200: what Django on this server can do at best.
"""
