"""The op log as dispatch reads it (filters, paging), and the JSON log lines."""
import json
import logging

from server.logs import JsonFormatter
from tests.sync.conftest import Device


def test_op_log_filters_and_pages(client, make):
    """Filter by device, courier, type and status; page newest first without repeats."""
    alice, bob = make.courier(), make.courier()
    a, b = Device(client, make.device(alice)), Device(client, make.device(bob))
    ta, tb = make.task(courier=alice), make.task(courier=bob)
    a.push([a.op("task.note", ta["id"], {"text": str(i)}) for i in range(5)]
           + [a.op("stop.arrive", ta["id"], {"lat": 31.2, "lon": 121.4})])
    b.push([b.op("task.note", tb["id"], {"text": "x"}), b.op("teleport", tb["id"], {})])
    headers = make.headers("quality")

    def get(**query):
        return client.get("/api/v1/dispatch/ops", query_string=query, headers=headers).json

    assert len(get(device_id=a.id)["items"]) == 6
    assert len(get(courier_id=bob["id"])["items"]) == 2
    assert [op["type"] for op in get(type="stop.arrive")["items"]] == ["stop.arrive"]
    assert [op["code"] for op in get(status="rejected")["items"]] == ["unknown_op_type"]
    seen, cursor = [], None
    while True:
        page = get(device_id=a.id, limit=4, **({"cursor": cursor} if cursor else {}))
        seen += [op["seq"] for op in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [6, 5, 4, 3, 2, 1]
    assert client.get("/api/v1/dispatch/ops", query_string={"status": "lost"},
                      headers=headers).status_code == 422


def test_log_lines_are_json_with_request_id_and_actor(client, make, caplog):
    """Each access line is one JSON object with the request id and the caller, never the token."""
    headers = make.headers("dispatcher")
    token = headers["Authorization"].split()[1]
    with caplog.at_level(logging.INFO, logger="fieldops.access"):
        client.get("/api/v1/dispatch/tasks", headers={**headers, "X-Request-Id": "req-12345678"})
    records = [r for r in caplog.records if r.name == "fieldops.access"]
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "req-12345678" and line["status"] == 200
    assert line["actor"]["kind"] == "staff" and line["actor"]["id"].startswith("s-")
    assert token not in json.dumps(line)
