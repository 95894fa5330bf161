"""Real services the tests start themselves: PostgreSQL, object-store emulators.

Each module is a pytest plugin (registered in ``tests/conftest.py``) with session-scoped
fixtures that start its service on first use and stop it at the end of the session. A
service that cannot start fails the tests that need it, loudly; nothing is skipped.
"""
