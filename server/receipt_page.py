"""The public receipt page /r/<token>: what was handed over and whether the seal verifies; its JSON and QR.

Server-rendered, outside the API and its OpenAPI spec, like the customer page.
"""
import logging

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from schemas.claims import ClaimForm
from schemas.complaints import ComplaintForm
from server import complaint_form
from server.clock import local_zone
from server.customer_page import PAGE_CSP, VISIT_COOKIE, _csrf, _form, _visit_nonce, page_language
from server.errors import DomainError, NotFound, http_error_code, problem_response
from server.qr import QR_FORMATS, qr_image
from server.requests import body_limit
from server.services import claims, complaints, leaks, receipts

log = logging.getLogger(__name__)

bp = Blueprint("receipt_page", __name__, url_prefix="/r")

TEXT = {
    "zh": {
        "title": "电子回单", "number": "回单号", "recipient": "收件人", "sender": "寄件人", "time": "时间", "inspection": "验货",
        "accepted": "客户验收", "yes": "是", "no": "否", "counted": "清点件数", "fees": "收款明细",
        "amount": "实收金额", "cod": "代收货款", "no_fees": "无", "seal": "签章", "seal_ok": "签章有效：回单内容未被改动。",
        "seal_bad": "签章无效：回单内容与签章不符。", "json": "下载签章回单（JSON，用于离线验证）",
        "switch": "English",
        "kind_delivery": "派送签收", "kind_refusal": "拒收", "kind_pickup": "上门取件",
        "condition_ok": "完好", "condition_damaged": "破损", "condition_missing": "缺失",
        "fee_delivery": "派送费", "fee_cod_service": "代收货款服务费", "fee_insurance": "保价费",
        "fee_packaging": "包装费", "fee_storage": "超期保管费",
        "claims": "理赔", "claim_new": "申请理赔", "claim_parcel": "包裹", "claim_kind": "类型",
        "claim_kind_damage": "破损", "claim_kind_loss": "丢失", "claim_kind_other": "其他",
        "claim_description": "情况说明", "claim_amount": "索赔金额（元）", "claim_send": "提交理赔申请",
        "claim_status_opened": "已受理", "claim_status_assessed": "已核定", "claim_status_approved": "已批准",
        "claim_status_paid": "已赔付", "claim_status_rejected": "未予赔付", "claim_paid": "赔付金额",
        "done_claim": "理赔申请已提交，处理进度会显示在这里。",
        "claim_on_delivery": "揽收的快件如有破损或丢失，请在派送签收后的回单页申请理赔，或联系客服。",
        "err_csrf_failed": "页面已过期，请重新打开链接后再提交。",
        "err_validation_failed": "提交的内容有误，请检查后重试。",
        "err_claim_already_open": "这个包裹已有处理中的理赔申请，进度显示在回单页上。",
        "err_receipt_link_invalid": "这个回单链接无效。请检查完整链接或扫描回单上的二维码。",
        "err_rate_limited": "操作太频繁了，请稍后再试。", "err_other": "出了点问题，请稍后再试。",
    },
    "en": {
        "title": "Receipt", "number": "Receipt number", "recipient": "Recipient", "sender": "Sender", "time": "Time",
        "inspection": "Inspection", "accepted": "Accepted by the customer", "yes": "yes", "no": "no",
        "counted": "counted", "fees": "Payment", "amount": "Amount paid",
        "cod": "Cash on delivery (goods)", "no_fees": "none", "seal": "Seal",
        "seal_ok": "The seal verifies: this receipt is as it was issued.",
        "seal_bad": "The seal does NOT verify: this receipt does not match its seal.",
        "json": "Download the sealed receipt (JSON, for offline verification)", "switch": "中文",
        "kind_delivery": "Delivery", "kind_refusal": "Refusal", "kind_pickup": "Pickup",
        "condition_ok": "good", "condition_damaged": "damaged", "condition_missing": "missing",
        "fee_delivery": "Delivery fee", "fee_cod_service": "Cash-on-delivery service fee",
        "fee_insurance": "Declared-value insurance", "fee_packaging": "Packaging",
        "fee_storage": "Storage beyond the free period",
        "claims": "Claims", "claim_new": "Claim for damage or loss", "claim_parcel": "Parcel",
        "claim_kind": "What happened", "claim_kind_damage": "damaged", "claim_kind_loss": "lost",
        "claim_kind_other": "other", "claim_description": "Describe it", "claim_amount": "Amount claimed (yuan)",
        "claim_send": "Send the claim", "claim_status_opened": "received", "claim_status_assessed": "assessed",
        "claim_status_approved": "approved", "claim_status_paid": "paid", "claim_status_rejected": "not paid",
        "claim_paid": "Paid", "done_claim": "Claim sent: its progress is shown here.",
        "claim_on_delivery": "For a collected parcel damaged or lost on its way, claim on the receipt of its "
                             "delivery, or call customer service.",
        "err_csrf_failed": "This page has expired; please open the link again and resubmit.",
        "err_validation_failed": "Something in the form was not right; please check it and try again.",
        "err_claim_already_open": "A claim for this parcel is already being handled; its progress is shown on the "
                                  "receipt page.",
        "err_receipt_link_invalid": "This receipt link is not valid. Please check the whole link or scan the "
                                    "receipt's QR code.",
        "err_rate_limited": "Too many requests; please try again in a few minutes.",
        "err_other": "Something went wrong; please try again later.",
    },
}

for _lang in TEXT:
    TEXT[_lang].update(complaint_form.TEXT[_lang])


def yuan(fen: int) -> str:
    """An amount in fen as people read it: ¥12.00."""
    return f"¥{fen // 100}.{fen % 100:02d}"


def _wants_json() -> bool:
    """True when the caller asked for the machine form (a .json path or an Accept header preferring JSON)."""
    if request.path.endswith(".json"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


@bp.get("/<token>")
def show(token):
    """The receipt as a page (or, asked for JSON, the sealed receipt)."""
    receipt = receipts.open_page(token=token)
    if _wants_json():
        body = receipts.sealed(receipt)
    else:
        view = receipts.page(receipt=receipt)
        lang = page_language()
        body = render_template("receipt/page.html", t=TEXT[lang], lang=lang, token=token, view=view, yuan=yuan,
                               time=view["time"].astimezone(local_zone()).strftime("%Y-%m-%d %H:%M"),
                               other="en" if lang == "zh" else "zh", claims=claims.for_customer(receipt=receipt),
                               parcels=claims.claimable_parcels(receipt=receipt),
                               csrf=_csrf(receipt.id, _visit_nonce()), done=request.args.get("done"),
                               **complaint_form.view(receipt.task_id, url_for(".complain", token=token)))
    _note_use(receipt)
    return body


def _note_use(receipt) -> None:
    """The receipt was shown to this client address (leak detection); after the answer is built, since the note
    commits on its own. ProxyFix has put the client's address in remote_addr when behind trusted proxies."""
    leaks.note_link_use(link_kind="receipt", link_id=receipt.id, address=request.remote_addr, task_id=receipt.task_id)


@bp.post("/<token>/claim")
def claim(token):
    """The customer claims for a damaged or lost parcel of the receipt; the page then shows its status."""
    receipt = receipts.open_page(token=token)
    form = _form(ClaimForm, receipt)
    claims.open_for_customer(receipt=receipt, kind=form["kind"], description=form["description"],
                             claimed_amount=form["claimed_amount"], parcel_no=form["parcel_no"])
    return redirect(url_for(".show", token=token, lang=page_language(), done="claim"), code=303)


@bp.post("/<token>/complaint")
@body_limit("COMPLAINT_FORM_BODY_LIMIT")
def complain(token):
    """The customer complains about the handover (its courier, or the depot, hotline or product), photo or not."""
    receipt = receipts.open_page(token=token)
    form = _form(ComplaintForm, receipt)
    complaint = complaints.file_for_customer(
        actor=claims.customer(receipt), task_id=receipt.task_id, channel="receipt_page", category=form["category"],
        subject=form["subject"], text=form["text"], photo=complaint_form.photo())
    return redirect(url_for(".show", token=token, lang=page_language(), done="complaint", ref=complaint.reference),
                    code=303)


@bp.get("/<token>.json")
def sealed(token):
    """The sealed receipt for machine verification: the signed JSON and its seal."""
    receipt = receipts.open_page(token=token)
    body = receipts.sealed(receipt)
    _note_use(receipt)
    return body


@bp.get("/<token>/qr.<fmt>")
def qr(token, fmt):
    """The QR code of the page's address, as PNG or SVG (for the paper receipt or the handheld's screen)."""
    if fmt not in QR_FORMATS:
        raise NotFound("QR codes come as .png or .svg.", code="not_found")
    receipts.open_page(token=token)
    body, mimetype = qr_image(receipts.page_url(token=token), fmt)
    return Response(body, mimetype=mimetype)


def _error(status: int, code: str, detail: str, headers: dict | None = None, extra: dict | None = None):
    """A refusal: problem+json for the machine form, else a friendly page in the visitor's language."""
    if _wants_json():
        return problem_response(status, code, "Receipt", detail, headers=headers, extra=extra)
    g.problem_code = code  # for the access line
    lang = page_language()
    text = TEXT[lang]
    body = render_template("customer/error.html", t=text, lang=lang, message=text.get(f"err_{code}", text["err_other"]))
    return body, status, headers or {}


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    """An unknown token (404) or too many requests (429)."""
    return _error(error.status, error.code, error.detail, error.headers, error.extra)


@bp.errorhandler(Exception)
def _unexpected(error: Exception):
    """Anything else: HTTP errors keep their status, a bug is logged and is a 500; never a trace."""
    if isinstance(error, HTTPException):
        status = error.code or 500
        return _error(status, http_error_code(status), error.name)
    log.exception("unhandled error on the receipt page")
    return _error(500, "other", "Internal error.")


@bp.after_request
def _headers(response):
    """The customer page's strict CSP; not cached, not referred (nosniff is set on every answer); the visit cookie
    of the claim form's CSRF token when it is new."""
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Vary"] = "Accept, Accept-Language"
    nonce = g.pop("new_visit_nonce", None)
    if nonce:
        response.set_cookie(VISIT_COOKIE, nonce, path=bp.url_prefix + "/", httponly=True, samesite="Strict",
                            secure=request.is_secure)
    return response
