"""Reports: the service-quality KPIs (JSON or CSV), their daily trend chart, and the tasks behind each figure."""
from urllib.parse import urlencode

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.kpis import KpiQuery, KpiRange, KpiReportOut, KpiRowsOut, KpiRowsQuery
from server.auth import OFFICE, require
from server.services import kpis

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Service-quality reports (office)")


def _linker(query: dict):
    """Builds each figure's link to its tasks, for the report's dates and grouping."""
    def link(name: str, group: str | None) -> str:
        args = {"from": query["from_"].isoformat(), "to": query["to"].isoformat()}
        if query.get("group_by") and group is not None:
            args.update(group_by=query["group_by"], group=group)
        return url_for("reports.KpiRows", figure=name) + "?" + urlencode(args)
    return link


@blp.route("/kpis")
class Kpis(MethodView):
    """The KPI report."""

    @require(*OFFICE)
    @blp.doc(responses={"200": {"description": "The report (JSON), or CSV with ?format=csv", "content": {
        "application/json": {"schema": KpiReportOut}, "text/csv": {"schema": {"type": "string"}}}}})
    @blp.arguments(KpiQuery, location="query")
    @blp.response(200, KpiReportOut)
    def get(self, query):
        """Every figure with its numerator and denominator, per group and in total; ?format=csv for CSV."""
        result = kpis.report(start=query["from_"], end=query["to"], group_by=query["group_by"],
                             link=_linker(query))
        if query["format"] == "csv":
            return Response(kpis.as_csv(result), mimetype="text/csv",
                            headers={"Content-Disposition": "attachment; filename=kpis.csv"})
        return result


@blp.route("/kpis/chart.png")
class KpiChart(MethodView):
    """The KPIs' daily trend."""

    @require(*OFFICE)
    @blp.arguments(KpiRange, location="query")
    @blp.doc(responses={"200": {"description": "The daily trend as a PNG",
                                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, query):
        """The figures per day over the dates, drawn as a PNG."""
        return Response(kpis.chart(start=query["from_"], end=query["to"]), mimetype="image/png",
                        headers={"Cache-Control": "no-store"})


@blp.route("/kpis/<figure>/tasks")
class KpiRows(MethodView):
    """The tasks (or complaints) behind a figure."""

    @require(*OFFICE)
    @blp.arguments(KpiRowsQuery, location="query")
    @blp.response(200, KpiRowsOut)
    def get(self, query, figure):
        """The ids in the figure's denominator (counted: also in its numerator), in id order, a page at a time."""
        return kpis.rows_behind(name=figure, start=query["from_"], end=query["to"], group_by=query["group_by"],
                                group=query["group"], cursor=query["cursor"], limit=query["limit"])
