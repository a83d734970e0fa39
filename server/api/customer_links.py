"""Dispatch: customer links (the confirmation page's address for a task) and their QR images."""
from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.customer_links import CustomerLinkIn, CustomerLinkOut
from server.auth import DISPATCH, current_actor, require
from server.errors import NotFound
from server.qr import QR_FORMATS, qr_image
from server.services import customer_links

blp = Blueprint("customer_links", __name__, url_prefix="/api/v1/dispatch",
                description="Customer confirmation links (dispatch)")


def _link_out(link, token: str) -> dict:
    """The answer for a link: its page URL and where its QR images are (by link id: no token in those paths)."""
    return {"url": customer_links.page_url(token=token), "expires_at": link.expires_at,
            **{f"qr_{fmt}": url_for("customer_links.customer_link_qr", link_id=link.id, fmt=fmt, _external=True)
               for fmt in QR_FORMATS}}


@blp.route("/tasks/<task_id>/customer-link")
class CustomerLinks(MethodView):
    """Issuing the customer's link for a task."""

    @require(*DISPATCH)
    @blp.arguments(CustomerLinkIn)
    @blp.response(201, CustomerLinkOut)
    def post(self, data, task_id):
        """Issue a link (earlier links of the task stop working); the URL is shown once here and in its QR."""
        link, token = customer_links.create(actor=current_actor(), task_id=task_id, **data)
        return _link_out(link, token)


@blp.route("/customer-links/<link_id>/qr.<fmt>", endpoint="customer_link_qr")
@blp.doc(responses={"200": {"description": "QR image of the link's URL",
                            "content": {"image/png": {}, "image/svg+xml": {}}}})
@require(*DISPATCH)
def customer_link_qr(link_id, fmt):
    """The QR code of a live link's URL, as PNG or SVG."""
    if fmt not in QR_FORMATS:
        raise NotFound("QR codes come as .png or .svg.", code="not_found")
    _link, token = customer_links.get_for_dispatch(link_id=link_id)
    body, mimetype = qr_image(customer_links.page_url(token=token), fmt)
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-store"})
