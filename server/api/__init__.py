"""HTTP API: one blueprint per domain, all under /api/v1 (health checks at the root)."""
from flask import Flask

from server import customer_page
from server.api import admin, appointments, couriers, customer_links, devices, health, me, sync, tasks, vehicles


def register_blueprints(app: Flask, api) -> None:
    """Attach every blueprint; health checks and the customer page stay outside the OpenAPI spec."""
    app.register_blueprint(health.bp)
    app.register_blueprint(customer_page.bp)
    for module in (couriers, vehicles, tasks, customer_links, devices, me, sync, admin, appointments):
        api.register_blueprint(module.blp)
