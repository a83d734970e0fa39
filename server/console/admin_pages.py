"""Console pages for admins: webhook subscriptions and their deliveries, the scheduled jobs and their runs, and
the staff (create, deactivate; a secret is shown once, on the page that made it, and never again)."""
from flask import current_app, g, redirect, render_template, url_for

from schemas.admin import StaffIn
from schemas.common import NewestFirstQuery, PageQuery
from schemas.vocab import DELIVERY_STATUSES, EVENT_TYPES, STAFF_ROLES
from schemas.webhooks import DeliveryQuery, WebhookIn
from server.console import bp, parsing
from server.console.auth import page
from server.console.i18n import register, register_nav
from server.services import job_runs, staff, webhooks

ADMIN = ("admin",)
# The page where an admin sets a staff member's console password (another page's; linked when it exists).
PASSWORD_PAGE = "console.staff_password"
# A page that shows a secret once must never be kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def webhook_list(*, cursor: str | None) -> dict:
    """A page of subscriptions (never their secrets)."""
    return {"page": webhooks.get_all(cursor=cursor, limit=50), "event_types": ("*", *EVENT_TYPES)}


def webhook_view(*, subscription_id: str, filters: dict) -> dict:
    """A subscription with a page of its deliveries, newest first."""
    return {"webhook": webhooks.get(subscription_id=subscription_id),
            "deliveries": webhooks.deliveries(subscription_id=subscription_id, **filters), "filters": filters}


def job_list() -> dict:
    """Every scheduled job with its schedule and last run."""
    return {"jobs": job_runs.get_all()}


def job_view(*, name: str, cursor: int | None) -> dict:
    """A page of one job's runs, newest first."""
    return {"name": name, "runs": job_runs.get_runs(job=name, cursor=cursor),
            "job": next(job for job in job_runs.get_all() if job["name"] == name)}


def staff_list() -> dict:
    """Every staff user, with where an admin sets their password (when that page exists)."""
    return {"staff": staff.get_all(), "roles": STAFF_ROLES,
            "password_page": PASSWORD_PAGE if PASSWORD_PAGE in current_app.view_functions else None}


register({
    "zh": {
        "nav_webhooks": "Webhook", "nav_jobs": "定时任务", "nav_staff": "员工",
        "webhooks": "Webhook 订阅", "webhook": "Webhook", "jobs": "定时任务", "job": "定时任务", "staff": "员工",
        "adm_url": "地址", "adm_types": "事件类型", "adm_description": "说明", "adm_active": "启用",
        "adm_paused": "已停用", "adm_create": "新建", "adm_rotate": "更换签名密钥", "adm_disable": "停用", "adm_enable": "启用",
        "adm_secret": "签名密钥（只显示这一次，请立即保存）", "adm_deliveries": "投递记录", "adm_attempts": "尝试次数",
        "adm_next_attempt": "下次尝试", "adm_last_answer": "最近结果", "adm_replay": "重新投递", "adm_event": "事件",
        "adm_status": "状态", "adm_created": "创建时间", "adm_any": "全部", "adm_filter": "筛选",
        "adm_next": "下一页", "adm_nothing": "没有记录。", "adm_schedule": "计划", "adm_last_run": "最近运行",
        "adm_runs": "运行记录", "adm_started": "开始", "adm_finished": "结束", "adm_outcome": "结果",
        "adm_counts": "计数", "adm_error": "错误", "adm_host": "主机", "adm_username": "用户名", "adm_role": "角色",
        "adm_tokens": "API 令牌", "adm_deactivate": "停用账号", "adm_inactive": "已停用", "adm_set_password": "设置密码",
        "adm_token": "首个 API 令牌（只显示这一次，请立即保存）", "adm_new_staff": "新建员工",
        "dl_pending": "待投递", "dl_delivered": "已送达", "dl_dead": "已放弃",
        "done_disabled": "已停用。", "done_enabled": "已启用。", "done_replayed": "已安排重新投递。",
        "done_deactivated": "账号已停用。",
    },
    "en": {
        "nav_webhooks": "Webhooks", "nav_jobs": "Jobs", "nav_staff": "Staff",
        "webhooks": "Webhook subscriptions", "webhook": "Webhook", "jobs": "Scheduled jobs", "job": "Job",
        "staff": "Staff", "adm_url": "URL", "adm_types": "Event types", "adm_description": "Description",
        "adm_active": "Active", "adm_paused": "Disabled", "adm_create": "Create", "adm_rotate": "Rotate the secret", "adm_disable": "Disable",
        "adm_enable": "Enable", "adm_secret": "Signing secret (shown this once: keep it now)",
        "adm_deliveries": "Deliveries", "adm_attempts": "Attempts", "adm_next_attempt": "Next attempt",
        "adm_last_answer": "Last answer", "adm_replay": "Send again", "adm_event": "Event", "adm_status": "Status",
        "adm_created": "Created", "adm_any": "Any", "adm_filter": "Filter", "adm_next": "Next page",
        "adm_nothing": "Nothing here.", "adm_schedule": "Schedule", "adm_last_run": "Last run", "adm_runs": "Runs",
        "adm_started": "Started", "adm_finished": "Finished", "adm_outcome": "Outcome", "adm_counts": "Counts",
        "adm_error": "Error", "adm_host": "Host", "adm_username": "Username", "adm_role": "Role",
        "adm_tokens": "API tokens", "adm_deactivate": "Deactivate", "adm_inactive": "Inactive",
        "adm_set_password": "Set password", "adm_token": "First API token (shown this once: keep it now)",
        "adm_new_staff": "New staff member",
        "dl_pending": "Pending", "dl_delivered": "Delivered", "dl_dead": "Dead",
        "done_disabled": "Disabled.", "done_enabled": "Enabled.", "done_replayed": "Queued to be sent again.",
        "done_deactivated": "Account deactivated.",
    },
})
register_nav("console.webhook_list_page", "nav_webhooks", ADMIN)
register_nav("console.job_list_page", "nav_jobs", ADMIN)
register_nav("console.staff_list_page", "nav_staff", ADMIN)


# --- webhooks ---------------------------------------------------------------------------------------------------------

@bp.get("/admin/webhooks")
@page(*ADMIN)
def webhook_list_page():
    """Subscriptions, and the form for a new one."""
    view = webhook_list(cursor=parsing.query(PageQuery)["cursor"])
    return render_template("console/admin/webhooks.html", **view, next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.post("/admin/webhooks")
@page(*ADMIN)
def webhook_create():
    """Subscribe a URL to event types; the page that answers shows the signing secret this once."""
    subscription, secret = webhooks.create(actor=g.actor, **parsing.form(WebhookIn, lists=("event_types",)))
    body = render_template("console/admin/webhook_created.html", webhook=subscription, secret=secret)
    return body, 201, NO_STORE


@bp.get("/admin/webhooks/<subscription_id>")
@page(*ADMIN)
def webhook_page(subscription_id):
    """A subscription and its deliveries, by status."""
    view = webhook_view(subscription_id=subscription_id, filters=parsing.query(DeliveryQuery))
    return render_template("console/admin/webhook.html", **view, statuses=DELIVERY_STATUSES,
                           next_page=parsing.next_page(view["deliveries"]["next_cursor"]))


def _set_active(subscription_id: str, active: bool):
    """Pause or resume a subscription (PATCH active), back to its page."""
    webhooks.update(actor=g.actor, subscription_id=subscription_id, changes={"active": active})
    return redirect(url_for("console.webhook_page", subscription_id=subscription_id,
                            done="enabled" if active else "disabled"), code=303)


@bp.post("/admin/webhooks/<subscription_id>/disable")
@page(*ADMIN)
def webhook_disable(subscription_id):
    """Pause the subscription: nothing is sent until it is enabled (events wait, fanned out then)."""
    return _set_active(subscription_id, False)


@bp.post("/admin/webhooks/<subscription_id>/enable")
@page(*ADMIN)
def webhook_enable(subscription_id):
    """Resume the subscription."""
    return _set_active(subscription_id, True)


@bp.post("/admin/webhooks/<subscription_id>/rotate-secret")
@page(*ADMIN)
def webhook_rotate(subscription_id):
    """Replace the signing secret; the page that answers shows the new one this once."""
    subscription, secret = webhooks.rotate_secret(actor=g.actor, subscription_id=subscription_id)
    return render_template("console/admin/webhook_created.html", webhook=subscription, secret=secret), 200, NO_STORE


@bp.post("/admin/webhooks/<subscription_id>/deliveries/<int:delivery_id>/replay")
@page(*ADMIN)
def webhook_replay(subscription_id, delivery_id):
    """Make a delivery pending now with a fresh attempt budget."""
    webhooks.replay(actor=g.actor, subscription_id=subscription_id, delivery_id=delivery_id)
    return redirect(url_for("console.webhook_page", subscription_id=subscription_id, done="replayed"), code=303)


# --- jobs -----------------------------------------------------------------------------------------------------------

@bp.get("/admin/jobs")
@page(*ADMIN)
def job_list_page():
    """Every scheduled job with its schedule and last run."""
    return render_template("console/admin/jobs.html", **job_list())


@bp.get("/admin/jobs/<name>")
@page(*ADMIN)
def job_page(name):
    """One job's runs, newest first."""
    view = job_view(name=name, cursor=parsing.query(NewestFirstQuery)["cursor"])
    return render_template("console/admin/job.html", **view, next_page=parsing.next_page(view["runs"]["next_cursor"]))


# --- staff ----------------------------------------------------------------------------------------------------------

@bp.get("/admin/staff")
@page(*ADMIN)
def staff_list_page():
    """Every staff member, with the form for a new one."""
    return render_template("console/admin/staff.html", **staff_list())


@bp.post("/admin/staff")
@page(*ADMIN)
def staff_create():
    """Add a staff member; the page that answers shows their first API token this once."""
    user, token = staff.create(actor=g.actor, **parsing.form(StaffIn))
    body = render_template("console/admin/staff_created.html", user=user, token=token, **staff_list())
    return body, 201, NO_STORE


@bp.post("/admin/staff/<staff_id>/deactivate")
@page(*ADMIN)
def staff_deactivate(staff_id):
    """Deactivate a staff member: their tokens and console sessions stop working."""
    staff.deactivate(actor=g.actor, staff_id=staff_id)
    return redirect(url_for("console.staff_list_page", done="deactivated"), code=303)
