#!/usr/bin/env python
"""KPI benchmark: N synthetic tasks of a 30-day month with their facts, then the report's time, per engine.

For each size and engine: a throw-away database at head, the rows written in
bulk (tools/kpi_data.py: COPY on PostgreSQL, executemany on SQLite), then the
report over the whole month timed without grouping and grouped by courier,
depot and day (best and worst of --runs). --explain prints the plan of the
task aggregation (PostgreSQL's, with timings; SQLite's query plan); --chart
FILE draws the month's daily trend.
Figures go into docs/benchmarks.md by hand, with the command line.
"""
import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.kpi_data import generate, load  # noqa: E402
from tools.loadgen import app_for, throwaway_database  # noqa: E402

FIRST_DAY = date(2026, 10, 1)
DAYS = 30


def _explain(db) -> list[str]:
    """The engine's plan of the ungrouped task aggregation: PostgreSQL's with timings, SQLite's query plan."""
    from sqlalchemy import text

    from server.services import kpis
    query = kpis._aggregate_query("tasks", None, FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1))
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    db.session.rollback()
    kpis._settle_in_for_a_big_read()  # as the report does
    if db.engine.dialect.name == "sqlite":
        return [row[3] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    return [row[0] for row in db.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))]


def run(engine_name: str, n: int, runs: int, explain: bool, chart: str | None, workdir: str) -> None:
    """Generate, load and time one size on one engine; print the figures."""
    with throwaway_database(engine_name, workdir) as url:
        app = app_for(url, workdir)
        with app.app_context():
            from server.extensions import db
            from server.services import kpis
            started = time.perf_counter()
            rows = generate(n, first_day=FIRST_DAY, days=DAYS)
            made = time.perf_counter() - started
            started = time.perf_counter()
            load(db.engine, rows)
            loaded = time.perf_counter() - started
            counts = {table: len(r) for table, r in rows.items()}
            del rows
            print(f"{engine_name} {n:,} tasks: generated in {made:.1f} s, loaded in {loaded:.1f} s "
                  f"({', '.join(f'{t} {c:,}' for t, c in counts.items())})", flush=True)
            end = FIRST_DAY + timedelta(days=DAYS - 1)
            for group_by in (None, "courier", "depot", "day"):
                times = []
                for _ in range(runs):
                    db.session.rollback()
                    started = time.perf_counter()
                    result = kpis.report(start=FIRST_DAY, end=end, group_by=group_by)
                    times.append(time.perf_counter() - started)
                on_time = result["total"]["figures"]["on_time_delivery"]
                print(f"  report group_by={group_by or 'none':<7} best {min(times):6.2f} s  worst {max(times):6.2f} s"
                      f"  groups {len(result['groups']):>4}  (on_time_delivery {on_time['numerator']:,}/"
                      f"{on_time['denominator']:,})", flush=True)
            if explain:
                for line in _explain(db):
                    print("    " + line)
            if chart:
                started = time.perf_counter()
                Path(chart).write_bytes(kpis.chart(start=FIRST_DAY, end=end))
                print(f"  chart {chart} in {time.perf_counter() - started:.2f} s")
            db.session.remove()
            db.engine.dispose()


def main() -> None:
    """Parse the sizes and engines and run each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="100000,1000000", help="Comma-separated task counts.")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--chart", default=None, help="Draw the last run's daily trend into this PNG.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fieldops-bench-kpis-") as workdir:
        for n in (int(x) for x in args.tasks.split(",")):
            for engine_name in args.engines.split(","):
                run(engine_name, n, args.runs, args.explain, args.chart, workdir)


if __name__ == "__main__":
    main()
