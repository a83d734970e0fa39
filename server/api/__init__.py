"""HTTP API: one blueprint per domain, all under /api/v1 (health checks at the root)."""
from flask import Flask

from server.api import admin, appointments, couriers, devices, health, me, sync, tasks, vehicles


def register_blueprints(app: Flask, api) -> None:
    """Attach every blueprint; health checks stay outside the OpenAPI spec."""
    app.register_blueprint(health.bp)
    for module in (couriers, vehicles, tasks, devices, me, sync, admin, appointments):
        api.register_blueprint(module.blp)
