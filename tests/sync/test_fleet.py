"""The fleet simulator as a test: a small fleet works a day against gunicorn and must converge."""
import os

from server.process import ServerProcess
from tools import fleet

SHORT = os.environ.get("FIELDOPS_TEST_TIER") == "short"


def test_simulated_fleet_converges_exactly_once(app, make, database_url, tmp_path):
    """Offline stretches, lost answers, reassignments and cancellations; every check of the run passes."""
    token = make.token("dispatcher")
    with ServerProcess(database_url, workers=2, threads=4, attachments_dir=str(tmp_path / "att"),
                       log_path=str(tmp_path / "gunicorn.log")) as server:
        summary = fleet.run(server.base_url, token, devices=4 if SHORT else 12, tasks_per_device=6,
                            steps=40 if SHORT else 120, step_seconds=0.02, lose=0.2, seed=3,
                            workdir=str(tmp_path))
    assert summary["ok"], summary["failures"]
    assert summary["ops_queued"] > 0 and summary["answers_lost"] > 0
    assert summary["reassigned"] + summary["cancelled"] > 0
    assert sum(summary["results"].values()) == summary["ops_queued"]
