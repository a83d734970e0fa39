"""Unknown query parameters are refused (422 naming them) on every route of the API, never silently ignored."""
import re

_PATH_PARAM = re.compile(r"\{[^}]+\}")


def test_every_route_refuses_an_unknown_query_parameter(client, make):
    """Each operation of the spec, asked with a parameter it does not take, answers 422 naming it (before its
    credentials are looked at, so every route alike); the spec's own documents are not operations."""
    spec = client.get("/api/v1/openapi.json").json
    headers = make.headers("admin")
    wrong = []
    asked = 0
    for path, item in spec["paths"].items():
        url = _PATH_PARAM.sub("1", path)
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in item:
                continue
            declared = {p["name"] for p in item[method].get("parameters", []) if p.get("in") == "query"}
            assert "zz_unknown" not in declared
            for auth in (headers, {}):
                response = client.open(url, method=method.upper(), query_string={"zz_unknown": "1", "Limit": "2"},
                                       headers=auth)
                asked += 1
                body = response.get_json(silent=True) or {}
                fields = set(body.get("fields", {}))
                if (response.status_code != 422 or body.get("code") != "validation_failed"
                        or not {"zz_unknown", "Limit"} <= fields or "zz_unknown" not in body.get("detail", "")):
                    wrong.append(f"{method.upper()} {path}: {response.status_code} {body}")
    assert asked > 150
    assert not wrong, "\n".join(wrong)


def test_known_parameters_and_paging_still_work(client, make):
    """The parameters a route declares are read as before; the cursor pages on."""
    headers = make.headers("dispatcher")
    for _ in range(3):
        make.task()
    first = client.get("/api/v1/dispatch/tasks?limit=2&status=unassigned", headers=headers)
    assert first.status_code == 200 and len(first.json["items"]) == 2 and first.json["next_cursor"]
    rest = client.get("/api/v1/dispatch/tasks", query_string={"limit": 2, "cursor": first.json["next_cursor"]},
                      headers=headers)
    assert rest.status_code == 200 and len(rest.json["items"]) == 1
    # A route that takes no query parameter at all: any is refused.
    task = make.task()
    response = client.get(f"/api/v1/dispatch/tasks/{task['id']}?expand=all", headers=headers)
    assert response.status_code == 422 and response.json["fields"] == {"expand": ["Unknown query parameter."]}
    assert client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=headers).status_code == 200
    # The spec and its pages are not API operations: their own query strings pass.
    assert client.get("/api/v1/openapi.json?v=1").status_code == 200
