"""Helpers shared by test modules: real processes, servers, sinks, browsers and API callers. No test lives here."""
