"""Receipts: the published public keys (anyone) and a receipt by its number (staff) with its QR image."""
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.receipts import KeySetOut, ReceiptOut
from server.auth import OFFICE, require
from server.errors import NotFound
from server.qr import QR_FORMATS, qr_image
from server.services import receipts

blp = Blueprint("receipts", __name__, url_prefix="/api/v1/receipts",
                description="Sealed receipts and the keys that verify them")
# <prefix>-<depot-local date>-<sequence> (services.receipts): never `keys`, whose route shares the path.
NUMBER = {"in": "path", "name": "number", "description": "The receipt number, e.g. FO-20260105-00001",
          "schema": {"type": "string", "pattern": r"^[^/\u0000-\u001f\u007f]+-[0-9]{8}-[0-9]{5,}$"}}


@blp.route("/keys")
class ReceiptKeys(MethodView):
    """The public keys, for verifying receipts offline."""

    @blp.response(200, KeySetOut)
    def get(self):
        """Every key that has sealed receipts, retired ones too (public: no token needed)."""
        return receipts.key_set()


@blp.route("/<number>", parameters=[NUMBER])
class ReceiptByNumber(MethodView):
    """One receipt."""

    @require(*OFFICE)
    @blp.response(200, ReceiptOut)
    def get(self, number):
        """The whole sealed receipt, whether its seal verifies, and the customer's page address."""
        return receipts.for_staff(number=number)


@blp.route("/<number>/qr.<fmt>", endpoint="receipt_qr", parameters=[NUMBER])
@blp.doc(responses={"200": {"description": "QR image of the receipt page's address",
                            "content": {"image/png": {}, "image/svg+xml": {}}}})
@require(*OFFICE)
def receipt_qr(number, fmt):
    """The QR code of the receipt page, as PNG or SVG (to print on the paper receipt)."""
    if fmt not in QR_FORMATS:
        raise NotFound("QR codes come as .png or .svg.", code="not_found")
    body, mimetype = qr_image(receipts.staff_url_of(number=number), fmt)
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-store"})
