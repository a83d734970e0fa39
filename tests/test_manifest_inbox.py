"""The manifest drop folder (the manifest-import job) and `fieldops import-manifest`."""
import json
import os

from sqlalchemy import func, select

from server import jobs
from server.extensions import db
from server.models import ManifestQuarantine, Task


def _rows(make, *waybills: str, bad: str | None = None) -> list[dict]:
    """Task rows for these waybills, and one with an impossible kind if bad names a waybill."""
    rows = [make.task_spec(waybill_no=w) for w in waybills]
    if bad:
        rows.append(make.task_spec(waybill_no=bad, kind="teleport"))
    return rows


def test_drop_folder_takes_complete_files_only(app, make, tmp_path):
    """*.csv and *.json are read; a .part file being written, hidden files and others wait; each goes to done/."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app.config["MANIFEST_INBOX"] = str(inbox)
    (inbox / "a.json").write_text(json.dumps(_rows(make, "IN-A1", "IN-A2", bad="IN-ABAD")))
    (inbox / "b.json.part").write_text(json.dumps(_rows(make, "IN-B1")))  # upstream still writing
    (inbox / ".c.json").write_text(json.dumps(_rows(make, "IN-C1")))
    (inbox / "notes.txt").write_text("not a manifest")
    counts = jobs.run("manifest-import")
    assert counts == {"files": 1, "unreadable_files": 0, "rows": 3, "rows_created": 2, "rows_updated": 0,
                      "rows_unchanged": 0, "rows_quarantined": 1}
    assert sorted(os.listdir(inbox)) == [".c.json", "b.json.part", "done", "notes.txt"]
    assert sorted(os.listdir(inbox / "done")) == ["a.json", "a.json.report.json"]
    report = json.loads((inbox / "done" / "a.json.report.json").read_text())
    assert report["counts"] == {"rows": 3, "created": 2, "updated": 0, "unchanged": 0, "quarantined": 1}
    assert report["rows"][2]["reasons"][0]["field"] == "kind" and report["file_name"] == "a.json"
    # The upstream finishes writing and renames: the next run takes it.
    os.rename(inbox / "b.json.part", inbox / "b.json")
    assert jobs.run("manifest-import")["rows_created"] == 1
    assert db.session.scalar(select(func.count()).select_from(Task)) == 3
    # Nothing new: the next run does nothing.
    assert jobs.run("manifest-import")["files"] == 0


def test_same_file_name_again_is_kept_beside(app, make, tmp_path):
    """A file dropped again under the same name is imported (unchanged) and kept beside the first in done/."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app.config["MANIFEST_INBOX"] = str(inbox)
    body = json.dumps(_rows(make, "IN-R1", bad="IN-RBAD"))
    (inbox / "daily.json").write_text(body)
    jobs.run("manifest-import")
    (inbox / "daily.json").write_text(body)
    counts = jobs.run("manifest-import")
    assert (counts["rows_unchanged"], counts["rows_quarantined"], counts["rows_created"]) == (1, 1, 0)
    done = sorted(os.listdir(inbox / "done"))
    assert len(done) == 4 and {"daily.json", "daily.json.report.json"} <= set(done)
    assert all(name.startswith("daily.") for name in done)
    assert db.session.scalar(select(func.count()).select_from(ManifestQuarantine)) == 1


def test_unreadable_file_is_moved_with_its_reason(app, make, tmp_path):
    """A file that cannot be read row by row is quarantined as row 0, moved, and its report says why."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app.config["MANIFEST_INBOX"] = str(inbox)
    (inbox / "broken.csv").write_text("waybill,who\nX,Y\n")
    counts = jobs.run("manifest-import")
    assert (counts["files"], counts["unreadable_files"], counts["rows"]) == (1, 1, 0)
    report = json.loads((inbox / "done" / "broken.csv.report.json").read_text())
    assert report["error"]["code"] == "validation_failed" and report["error"]["reasons"][0]["field"] == "header"
    entry = db.session.scalars(select(ManifestQuarantine)).one()
    assert (entry.row_number, entry.file_name, entry.reasons[0]["code"]) == (0, "broken.csv", "unreadable")
    assert entry.raw == {"head": "waybill,who\nX,Y\n"}


def test_no_inbox_configured_does_nothing(app):
    """Without FIELDOPS_MANIFEST_INBOX the job has nothing to read."""
    app.config["MANIFEST_INBOX"] = None
    assert jobs.run("manifest-import")["files"] == 0


def test_cli_import_manifest(app, make, tmp_path):
    """The command prints the counts and every quarantined row; exit 2 when rows were held back, 0 when not."""
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(_rows(make, "CLI-1", bad="CLI-BAD")))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-manifest", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("orders.json (") and "rows 2, created 1, updated 0, unchanged 0, quarantined 1" in lines[0]
    assert lines[1].startswith("quarantined row 2 (CLI-BAD): kind invalid:")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_rows(make, "CLI-2")))
    assert runner.invoke(args=["import-manifest", str(good)]).exit_code == 0
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    failed = runner.invoke(args=["import-manifest", str(broken)])
    assert failed.exit_code == 1 and "not JSON" in failed.output
    other = tmp_path / "orders.xml"
    other.write_text("<x/>")
    assert runner.invoke(args=["import-manifest", str(other)]).exit_code == 2  # usage error
    listed = runner.invoke(args=["jobs", "list"]).output
    assert "manifest-import\tevery 2 min" in listed and "retention\tdaily 03:30" in listed
