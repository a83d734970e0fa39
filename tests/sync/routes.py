"""The sync routes' access table (joined to tests/api/test_access.py)."""
SYNC_ROUTES: list = []
