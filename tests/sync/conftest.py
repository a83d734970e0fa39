"""Sync test helpers: a raw protocol speaker for a device."""
import itertools
import uuid
from datetime import datetime, timedelta, timezone

import pytest

PROTOCOL = {"Fieldops-Protocol": "1"}
SHANGHAI = timezone(timedelta(hours=8))


class Device:
    """Speaks the raw protocol through the test client; counts seqs like a handheld."""

    def __init__(self, client, enrolled: dict):
        """Bind to an enrolled device ({device_id, token})."""
        self.client = client
        self.id = enrolled["device_id"]
        self.headers = {"Authorization": f"Bearer {enrolled['token']}", **PROTOCOL}
        self._seq = itertools.count(1)

    def op(self, type_: str, entity_id: str | None, payload: dict, *, base_version: int | None = None,
           seq: int | None = None) -> dict:
        """A new op with the next seq (or the one given)."""
        return {"op_id": str(uuid.uuid4()), "seq": seq if seq is not None else next(self._seq),
                "type": type_, "entity_id": entity_id, "base_version": base_version,
                "device_time": datetime.now(SHANGHAI).isoformat(), "payload": payload}

    def push(self, ops: list[dict], *, expect: int = 200):
        """POST /sync/push; returns the JSON body."""
        response = self.client.post("/api/v1/sync/push", json={"device_id": self.id, "ops": ops},
                                    headers=self.headers)
        assert response.status_code == expect, response.json
        return response.json

    def pull(self, cursor: str | None = None, limit: int = 500, *, expect: int = 200):
        """GET /sync/pull; returns the JSON body."""
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = self.client.get("/api/v1/sync/pull", query_string=query, headers=self.headers)
        assert response.status_code == expect, response.json
        return response.json

    def pull_all(self, cursor: str | None = None, limit: int = 500) -> tuple[dict, str, dict]:
        """Pull until has_more is false: ({(entity, id): change}, cursor, last page)."""
        store: dict = {}
        while True:
            page = self.pull(cursor, limit)
            if page.get("reset"):
                store.clear()
                cursor = None
                continue
            for change in page["changes"]:
                key = (change["entity"], change["id"])
                if change["deleted"]:
                    store.pop(key, None)
                else:
                    store[key] = change
            cursor = page["cursor"]
            if not page["has_more"]:
                return store, cursor, page


@pytest.fixture
def courier(make):
    """A courier with a van."""
    courier = make.courier()
    van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                      headers=make.headers("dispatcher"))
    return courier


@pytest.fixture
def device(client, make, courier):
    """An enrolled handheld of the courier."""
    return Device(client, make.device(courier))
