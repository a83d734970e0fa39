"""The customer's complaint form, shared by the customer page (/c) and the receipt page (/r): its words, its photo.

The rule (who may file, how often, what is kept) is services.complaints.file_for_customer's; this module only
reads the post and gives the pages the same form in Chinese and English.
"""
from flask import request

from schemas.vocab import COMPLAINT_CATEGORIES, COMPLAINT_SUBJECTS
from server.services import complaints

TEXT = {
    "zh": {
        "complaints": "投诉", "complaint_new": "对服务不满意？提交投诉", "complaint_subject": "投诉对象",
        "subject_courier": "快递员", "subject_depot": "网点", "subject_hotline": "客服热线",
        "subject_product": "快递服务产品", "complaint_category": "问题类型",
        "category_impolite": "态度不好", "category_dispute": "纠纷", "category_late": "延误",
        "category_surcharge": "乱收费", "category_gift_withheld": "赠品未送达", "category_damage": "破损",
        "category_loss": "丢失", "category_other": "其他",
        "complaint_text": "情况说明", "complaint_photo": "照片（可选，JPEG 或 PNG，不超过 5 MB）",
        "complaint_send": "提交投诉", "complaint_reference": "投诉编号",
        "complaint_status_open": "已受理", "complaint_status_in_progress": "处理中",
        "complaint_status_resolved": "已办结",
        "done_complaint": "投诉已收到，我们会尽快联系你。投诉编号：",
        "err_photo_too_large": "照片太大了，请选择不超过 5 MB 的照片。",
        "err_body_too_large": "照片太大了，请选择不超过 5 MB 的照片。",
        "err_photo_unsupported": "照片格式不支持，请上传 JPEG 或 PNG 图片。",
    },
    "en": {
        "complaints": "Complaints", "complaint_new": "Not happy with our service? Tell us",
        "complaint_subject": "About", "subject_courier": "the courier", "subject_depot": "the depot",
        "subject_hotline": "the customer service hotline", "subject_product": "the delivery service itself",
        "complaint_category": "What went wrong", "category_impolite": "impolite", "category_dispute": "a dispute",
        "category_late": "late", "category_surcharge": "charged too much", "category_gift_withheld": "gift withheld",
        "category_damage": "damaged", "category_loss": "lost", "category_other": "other",
        "complaint_text": "Describe it", "complaint_photo": "Photo (optional, JPEG or PNG, up to 5 MB)",
        "complaint_send": "Send the complaint", "complaint_reference": "Reference",
        "complaint_status_open": "received", "complaint_status_in_progress": "being handled",
        "complaint_status_resolved": "resolved",
        "done_complaint": "Complaint received: we will contact you soon. Your reference: ",
        "err_photo_too_large": "The photo is too large; please choose one up to 5 MB.",
        "err_body_too_large": "The photo is too large; please choose one up to 5 MB.",
        "err_photo_unsupported": "That kind of photo is not accepted; please send a JPEG or PNG picture.",
    },
}


def photo() -> bytes | None:
    """The photo posted with the form, if one was chosen (a browser sends an empty part when none was)."""
    upload = request.files.get("photo")
    data = upload.read() if upload is not None else b""
    return data or None


def done_reference(complaints: list[dict]) -> str | None:
    """The reference of the complaint just filed (?ref=), if it is one of this page's: else nothing is said."""
    ref = request.args.get("ref")
    return ref if any(c["reference"] == ref for c in complaints) else None


def view(task_id: str, action: str) -> dict:
    """What the form (customer/complaint.html) shows on a page: the complaints filed from the pages, the choices."""
    filed = complaints.for_customer(task_id=task_id)
    return {"complaints": filed, "complaint_action": action, "done_ref": done_reference(filed),
            "complaint_categories": COMPLAINT_CATEGORIES, "complaint_subjects": COMPLAINT_SUBJECTS}
