"""HTTP API: one blueprint per domain, all under /api/v1 (health checks at the root)."""
from flask import Flask

from server import customer_page, receipt_page, scrape
from server.api import (admin, appointments, checklists, claims, complaints, couriers, customer_links, devices,
                        exceptions, grades, handover, health, integrations, leaks, ledger, manifests, me, messages,
                        office, quality, receipts, reports, scans, sync, tasks, training, vehicles, webhooks)
from server.errors import ProblemApi

# The documented API (flask-smorest): its blueprints, its spec, and the one handler of every error.
api = ProblemApi()


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint; /metrics, health checks and the customer and receipt pages stay outside the spec
    (the console is attached beside them by create_app)."""
    app.register_blueprint(scrape.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(customer_page.bp)
    app.register_blueprint(receipt_page.bp)
    for module in (couriers, vehicles, tasks, customer_links, devices, me, sync, admin, appointments,
                   handover, ledger, checklists, receipts, complaints, claims, grades, manifests, webhooks,
                   integrations, reports, scans, leaks, training, quality, exceptions, office, messages):
        api.register_blueprint(module.blp)
