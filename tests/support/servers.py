"""The HTTP servers tests run on 127.0.0.1: one class, so each has a listen queue long enough for a loaded machine."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LocalServer(ThreadingHTTPServer):
    """A threading HTTP server whose handler threads die with the test process, with a listen queue of 1,024.

    The standard library's queue is 5 connections: when the thread that accepts them waited for the interpreter (a
    dispatcher's loop in the same process, on a loaded machine), a sixth connection's SYN was dropped, the client
    sent it again a second later, and a try with a one-second time limit failed. A fairness test then saw an
    application's deliveries wait for their retry, behind another's backlog: about one run in ten under load (254
    listen-queue overflows counted by the kernel in 60 runs)."""

    daemon_threads = True
    request_queue_size = 1024
