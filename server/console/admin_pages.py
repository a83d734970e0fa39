"""Console pages for admins: webhook subscriptions and their deliveries, the scheduled jobs and their runs, and
the staff (create, deactivate; a secret is shown once, on the page that made it, and never again)."""
from flask import current_app, g, url_for

from schemas.admin import StaffIn
from schemas.common import NewestFirstQuery, PageQuery
from schemas.vocab import DELIVERY_STATUSES, EVENT_TYPES, STAFF_ROLES
from schemas.webhooks import DeliveryQuery, WebhookIn
from server.console import bp, parsing, register_nav
from server.console.auth import page, render
from server.console.i18n import register
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
    """Every staff user, with where an admin sets their password (when that page exists). Named `people`: the base
    template's `staff` is the signed-in user."""
    return {"people": staff.get_all(), "roles": STAFF_ROLES,
            "password_page": PASSWORD_PAGE if PASSWORD_PAGE in current_app.view_functions else None}


register({
    "zh": {
        "a_nav_webhooks": "Webhook", "a_nav_jobs": "定时任务", "a_nav_staff": "员工",
        "a_webhooks": "Webhook 订阅", "a_webhook": "Webhook", "a_jobs": "定时任务", "a_job": "定时任务", "a_staff": "员工",
        "a_adm_url": "地址", "a_adm_types": "事件类型", "a_adm_description": "说明", "a_adm_active": "启用",
        "a_adm_paused": "已停用", "a_adm_create": "新建", "a_adm_rotate": "更换签名密钥", "a_adm_disable": "停用", "a_adm_enable": "启用",
        "a_adm_secret": "签名密钥（只显示这一次，请立即保存）", "a_adm_deliveries": "投递记录", "a_adm_attempts": "尝试次数",
        "a_adm_next_attempt": "下次尝试", "a_adm_last_answer": "最近结果", "a_adm_replay": "重新投递", "a_adm_event": "事件",
        "a_adm_status": "状态", "a_adm_created": "创建时间", "a_adm_any": "全部", "a_adm_filter": "筛选",
        "a_adm_next": "下一页", "a_adm_nothing": "没有记录。", "a_adm_schedule": "计划", "a_adm_last_run": "最近运行",
        "a_adm_runs": "运行记录", "a_adm_started": "开始", "a_adm_finished": "结束", "a_adm_outcome": "结果",
        "a_adm_counts": "计数", "a_adm_error": "错误", "a_adm_host": "主机", "a_adm_username": "用户名", "a_adm_role": "角色",
        "a_adm_tokens": "API 令牌", "a_adm_deactivate": "停用账号", "a_adm_inactive": "已停用", "a_adm_set_password": "设置密码",
        "a_adm_token": "首个 API 令牌（只显示这一次，请立即保存）", "a_adm_new_staff": "新建员工",
        "a_adm_choose_role": "请选择角色",
        "a_dl_pending": "待投递", "a_dl_delivered": "已送达", "a_dl_dead": "已放弃",
        "a_done_disabled": "已停用。", "a_done_enabled": "已启用。", "a_done_replayed": "已安排重新投递。",
        "a_done_deactivated": "账号已停用。",
    },
    "en": {
        "a_nav_webhooks": "Webhooks", "a_nav_jobs": "Jobs", "a_nav_staff": "Staff",
        "a_webhooks": "Webhook subscriptions", "a_webhook": "Webhook", "a_jobs": "Scheduled jobs", "a_job": "Job",
        "a_staff": "Staff", "a_adm_url": "URL", "a_adm_types": "Event types", "a_adm_description": "Description",
        "a_adm_active": "Active", "a_adm_paused": "Disabled", "a_adm_create": "Create", "a_adm_rotate": "Rotate the secret", "a_adm_disable": "Disable",
        "a_adm_enable": "Enable", "a_adm_secret": "Signing secret (shown this once: keep it now)",
        "a_adm_deliveries": "Deliveries", "a_adm_attempts": "Attempts", "a_adm_next_attempt": "Next attempt",
        "a_adm_last_answer": "Last answer", "a_adm_replay": "Send again", "a_adm_event": "Event", "a_adm_status": "Status",
        "a_adm_created": "Created", "a_adm_any": "Any", "a_adm_filter": "Filter", "a_adm_next": "Next page",
        "a_adm_nothing": "Nothing here.", "a_adm_schedule": "Schedule", "a_adm_last_run": "Last run", "a_adm_runs": "Runs",
        "a_adm_started": "Started", "a_adm_finished": "Finished", "a_adm_outcome": "Outcome", "a_adm_counts": "Counts",
        "a_adm_error": "Error", "a_adm_host": "Host", "a_adm_username": "Username", "a_adm_role": "Role",
        "a_adm_tokens": "API tokens", "a_adm_deactivate": "Deactivate", "a_adm_inactive": "Inactive",
        "a_adm_set_password": "Set password", "a_adm_token": "First API token (shown this once: keep it now)",
        "a_adm_new_staff": "New staff member", "a_adm_choose_role": "Choose a role",
        "a_dl_pending": "Pending", "a_dl_delivered": "Delivered", "a_dl_dead": "Dead",
        "a_done_disabled": "Disabled.", "a_done_enabled": "Enabled.", "a_done_replayed": "Queued to be sent again.",
        "a_done_deactivated": "Account deactivated.",
    },
})
register_nav("console.webhook_list_page", "a_nav_webhooks", ADMIN)
register_nav("console.job_list_page", "a_nav_jobs", ADMIN)
register_nav("console.staff_list_page", "a_nav_staff", ADMIN)


# --- webhooks ---------------------------------------------------------------------------------------------------------

def _webhooks():
    """The subscriptions page."""
    view = webhook_list(cursor=parsing.query(PageQuery)["cursor"])
    return render("console/admin/webhooks.html", **view, next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/admin/webhooks")
@page(*ADMIN)
def webhook_list_page():
    """Subscriptions, and the form for a new one."""
    return _webhooks()


def _secret_page(subscription, secret: str, *, status: int):
    """The page showing a subscription's signing secret, this once (never kept by the browser)."""
    return render("console/admin/webhook_created.html", webhook=subscription, secret=secret)[0], status, NO_STORE


@bp.post("/admin/webhooks")
@page(*ADMIN)
def webhook_create():
    """Subscribe a URL to event types; the page that answers shows the signing secret this once."""
    return parsing.acted(
        lambda: webhooks.create(actor=g.actor, **parsing.form(WebhookIn, lists=("event_types",))),
        answer=lambda made: _secret_page(*made, status=201), again=_webhooks)


def _webhook(subscription_id: str):
    """A subscription's page."""
    view = webhook_view(subscription_id=subscription_id, filters=parsing.query(DeliveryQuery))
    return render("console/admin/webhook.html", **view, statuses=DELIVERY_STATUSES,
                  next_page=parsing.next_page(view["deliveries"]["next_cursor"]))


@bp.get("/admin/webhooks/<subscription_id>")
@page(*ADMIN)
def webhook_page(subscription_id):
    """A subscription and its deliveries, by status."""
    return _webhook(subscription_id)


def _webhook_acted(subscription_id: str, done: str, action):
    """A subscription's form answered: back to its page, or the page again with the refusal."""
    return parsing.acted(action, done=url_for("console.webhook_page", subscription_id=subscription_id, done=done),
                         again=lambda: _webhook(subscription_id))


@bp.post("/admin/webhooks/<subscription_id>/disable")
@page(*ADMIN)
def webhook_disable(subscription_id):
    """Pause the subscription (PATCH active=false): nothing is sent until it is enabled."""
    return _webhook_acted(subscription_id, "disabled", lambda: webhooks.update(
        actor=g.actor, subscription_id=subscription_id, changes={"active": False}))


@bp.post("/admin/webhooks/<subscription_id>/enable")
@page(*ADMIN)
def webhook_enable(subscription_id):
    """Resume the subscription (PATCH active=true)."""
    return _webhook_acted(subscription_id, "enabled", lambda: webhooks.update(
        actor=g.actor, subscription_id=subscription_id, changes={"active": True}))


@bp.post("/admin/webhooks/<subscription_id>/rotate-secret")
@page(*ADMIN)
def webhook_rotate(subscription_id):
    """Replace the signing secret; the page that answers shows the new one this once."""
    return parsing.acted(lambda: webhooks.rotate_secret(actor=g.actor, subscription_id=subscription_id),
                         answer=lambda made: _secret_page(*made, status=200), again=lambda: _webhook(subscription_id))


@bp.post("/admin/webhooks/<subscription_id>/deliveries/<int:delivery_id>/replay")
@page(*ADMIN)
def webhook_replay(subscription_id, delivery_id):
    """Make a delivery pending now with a fresh attempt budget."""
    return _webhook_acted(subscription_id, "replayed", lambda: webhooks.replay(
        actor=g.actor, subscription_id=subscription_id, delivery_id=delivery_id))


# --- jobs -----------------------------------------------------------------------------------------------------------

@bp.get("/admin/jobs")
@page(*ADMIN)
def job_list_page():
    """Every scheduled job with its schedule and last run."""
    return render("console/admin/jobs.html", **job_list())


@bp.get("/admin/jobs/<name>")
@page(*ADMIN)
def job_page(name):
    """One job's runs, newest first."""
    view = job_view(name=name, cursor=parsing.query(NewestFirstQuery)["cursor"])
    return render("console/admin/job.html", **view, next_page=parsing.next_page(view["runs"]["next_cursor"]))


# --- staff ----------------------------------------------------------------------------------------------------------

def _staff():
    """The staff page."""
    return render("console/admin/staff.html", **staff_list())


@bp.get("/admin/staff")
@page(*ADMIN)
def staff_list_page():
    """Every staff member, with the form for a new one."""
    return _staff()


@bp.post("/admin/staff")
@page(*ADMIN)
def staff_create():
    """Add a staff member; the page that answers shows their first API token this once."""
    return parsing.acted(lambda: staff.create(actor=g.actor, **parsing.form(StaffIn)), again=_staff,
                         answer=lambda made: (render("console/admin/staff_created.html", user=made[0], token=made[1],
                                                     **staff_list())[0], 201, NO_STORE))


@bp.post("/admin/staff/<staff_id>/deactivate")
@page(*ADMIN)
def staff_deactivate(staff_id):
    """Deactivate a staff member: their tokens and console sessions stop working."""
    return parsing.acted(lambda: staff.deactivate(actor=g.actor, staff_id=staff_id),
                         done=url_for("console.staff_list_page", done="deactivated"), again=_staff)
