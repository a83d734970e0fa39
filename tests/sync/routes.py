"""The sync routes' access table and the role sets both tables use (see tests/api/test_access.py)."""
DISPATCH = {"admin", "dispatcher"}
OFFICE = DISPATCH | {"quality"}
COURIER = {"courier"}

SYNC_ROUTES = [
    ("POST", "/api/v1/sync/push", COURIER),
    ("GET", "/api/v1/sync/pull", COURIER),
    ("PUT", "/api/v1/attachments/<sha256>", COURIER),
    ("HEAD", "/api/v1/attachments/<sha256>", COURIER),
    ("GET", "/api/v1/dispatch/attachments/<sha256>", OFFICE),
    ("GET", "/api/v1/dispatch/ops", OFFICE),
    ("GET", "/api/v1/dispatch/conflicts", OFFICE),
    ("POST", "/api/v1/dispatch/conflicts/<int:conflict_id>/resolve", DISPATCH),
]
