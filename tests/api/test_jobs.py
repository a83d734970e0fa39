"""GET /admin/jobs and /admin/jobs/<name>/runs: what `fieldops jobs list` shows, for admins only."""
import socket

from server import jobs


def test_jobs_list_shows_schedule_and_last_run(client, make):
    """Every declared job; the last run with outcome, host and counts; null before its first run."""
    make.courier()
    jobs.run("grades")
    jobs.run("grades")
    response = client.get("/api/v1/admin/jobs", headers=make.headers("admin"))
    assert response.status_code == 200
    items = {item["name"]: item for item in response.json["items"]}
    assert list(items) == [job.name for job in jobs.JOBS]
    assert items["sync-maintain"]["schedule"] == "daily 00:10" and items["sync-maintain"]["last_run"] is None
    last = items["grades"]["last_run"]
    assert (last["outcome"], last["counts"], last["host"], last["error"]) == (
        "ok", {"couriers": 1, "changed": 0}, socket.gethostname(), None)
    runs = client.get("/api/v1/admin/jobs/grades/runs", headers=make.headers("admin")).json["items"]
    assert last["id"] == runs[0]["id"] == max(r["id"] for r in runs)


def test_runs_are_paged_newest_first(client, make):
    """Pages of one job's runs, newest first, through next_cursor; other jobs' runs stay out."""
    for _ in range(5):
        jobs.run("op-results-archive")
    jobs.run("attachments-gc")
    headers = make.headers("admin")
    first = client.get("/api/v1/admin/jobs/op-results-archive/runs?limit=3", headers=headers).json
    second = client.get(f"/api/v1/admin/jobs/op-results-archive/runs?limit=3&cursor={first['next_cursor']}",
                        headers=headers).json
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True) and second["next_cursor"] is None
    assert {r["job"] for r in first["items"] + second["items"]} == {"op-results-archive"}
    assert first["items"][0]["counts"] == {"archived": 0}


def test_unknown_job_and_bad_paging(client, make):
    """An unknown job is a 404 with its code; a bad cursor or limit a 422 naming the field."""
    headers = make.headers("admin")
    missing = client.get("/api/v1/admin/jobs/nope/runs", headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "job_not_found"
    for query, field in (("limit=0", "limit"), ("limit=501", "limit"), ("cursor=abc", "cursor"),
                         ("cursor=99999999999", "cursor")):
        bad = client.get(f"/api/v1/admin/jobs/grades/runs?{query}", headers=headers)
        assert bad.status_code == 422 and field in bad.json["fields"], (query, bad.json)


def test_only_admins_read_jobs(client, make):
    """Dispatch, quality and maintenance are refused (403); no token is a 401."""
    for role in ("dispatcher", "quality", "maintenance"):
        for url in ("/api/v1/admin/jobs", "/api/v1/admin/jobs/grades/runs"):
            response = client.get(url, headers=make.headers(role))
            assert response.status_code == 403 and response.json["code"] == "forbidden"
    assert client.get("/api/v1/admin/jobs").status_code == 401
