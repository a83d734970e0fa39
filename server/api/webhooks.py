"""Administration: webhook subscriptions, their secrets and their delivery logs."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.common import PageQuery
from schemas.webhooks import (DeliveryOut, DeliveryPage, DeliveryQuery, WebhookIn, WebhookOut, WebhookPage,
                              WebhookPatch, WebhookSecretOut)
from server.auth import current_actor, require
from server.services import webhooks

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/admin/webhooks",
                description="Webhook subscriptions and deliveries (admin)")

ADMIN = ("admin",)


@blp.route("")
class Webhooks(MethodView):
    """Webhook subscriptions."""

    @require(*ADMIN)
    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookSecretOut)
    def post(self, data):
        """Subscribe a URL to event types; the signing secret is in the answer, shown this once."""
        subscription, secret = webhooks.create(actor=current_actor(), **data)
        return {"webhook": subscription, "secret": secret}

    @require(*ADMIN)
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, WebhookPage)
    def get(self, query):
        """Subscriptions in creation order (never their secrets)."""
        return webhooks.get_all(**query)


@blp.route("/<subscription_id>")
class WebhookById(MethodView):
    """One subscription."""

    @require(*ADMIN)
    @blp.response(200, WebhookOut)
    def get(self, subscription_id):
        """Read a subscription."""
        return webhooks.get(subscription_id=subscription_id)

    @require(*ADMIN)
    @blp.arguments(WebhookPatch)
    @blp.response(200, WebhookOut)
    def patch(self, data, subscription_id):
        """Change the URL, the event types, the description, or pause and resume it (active)."""
        return webhooks.update(actor=current_actor(), subscription_id=subscription_id, changes=data)

    @require(*ADMIN)
    @blp.response(204)
    def delete(self, subscription_id):
        """Remove a subscription and its delivery log."""
        webhooks.delete(actor=current_actor(), subscription_id=subscription_id)


@blp.route("/<subscription_id>/rotate-secret")
class WebhookSecret(MethodView):
    """The subscription's signing secret."""

    @require(*ADMIN)
    @blp.response(200, WebhookSecretOut)
    def post(self, subscription_id):
        """Replace the signing secret; the new one is in the answer, shown this once."""
        subscription, secret = webhooks.rotate_secret(actor=current_actor(), subscription_id=subscription_id)
        return {"webhook": subscription, "secret": secret}


@blp.route("/<subscription_id>/deliveries")
class WebhookDeliveries(MethodView):
    """A subscription's delivery log."""

    @require(*ADMIN)
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryPage)
    def get(self, query, subscription_id):
        """Deliveries newest first, by status: attempts, last answer, next attempt."""
        return webhooks.deliveries(subscription_id=subscription_id, **query)


@blp.route("/<subscription_id>/deliveries/<int:delivery_id>/replay")
class WebhookReplay(MethodView):
    """Sending a delivery again."""

    @require(*ADMIN)
    @blp.response(200, DeliveryOut)
    def post(self, subscription_id, delivery_id):
        """Make a delivery (dead, or any) pending now with a fresh attempt budget; the outbox job sends it."""
        return webhooks.replay(actor=current_actor(), subscription_id=subscription_id, delivery_id=delivery_id)
