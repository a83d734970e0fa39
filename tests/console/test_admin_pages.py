"""The admin pages of the console: webhooks (create with the secret shown once, disable, deliveries, replay), the
scheduled jobs and their runs, and staff (create with the first token shown once, deactivate). Admins only."""
import re

from sqlalchemy import select

from server import jobs
from server.extensions import db
from server.models import StaffUser
from server.services import webhooks
from tests.api import test_webhooks

# A real HTTP receiver on loopback, and the config that lets webhooks reach it.
receiver, loopback_allowed = test_webhooks.receiver, test_webhooks.loopback_allowed

PAGES = ("/console/admin/webhooks", "/console/admin/jobs", "/console/admin/staff")


def staff_id(client) -> str:
    """The id of the staff member a console client is signed in as."""
    return db.session.scalar(select(StaffUser.id).where(StaffUser.username == client.username))


def test_admin_pages_are_for_admins_only(console_as):
    """Every other role gets 403 on every admin page."""
    for role in ("dispatcher", "quality", "maintenance", "integration"):
        client = console_as(role)
        assert [client.get(path).status_code for path in PAGES] == [403, 403, 403], role
    admin = console_as("admin")
    assert [admin.get(path).status_code for path in PAGES] == [200, 200, 200]


def test_a_webhook_is_created_with_its_secret_once_then_disabled_and_its_deliveries_listed(
        client, make, console_as, csrf_of, receiver, loopback_allowed):
    """The secret is on the page that created the subscription (not stored by the browser) and never again; the
    API lists it; disabling pauses it; a delivery of an event appears with its status and is sent again."""
    admin = console_as("admin")
    token = csrf_of(admin, "/console/admin/webhooks")
    made = admin.post("/console/admin/webhooks", data={
        "csrf_token": token, "url": f"http://127.0.0.1:{receiver.port}/fieldops",
        "event_types": ["complaint.opened", "complaint.taken"], "description": "CRM"})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', made.text).group(1)
    [listed] = client.get("/api/v1/admin/webhooks", headers=make.headers("admin")).json["items"]
    assert listed["event_types"] == ["complaint.opened", "complaint.taken"] and listed["active"] is True
    page = f"/console/admin/webhooks/{listed['id']}"
    assert secret not in admin.get(page).text and secret not in admin.get("/console/admin/webhooks").text
    disabled = admin.post(f"{page}/disable", data={"csrf_token": token})
    assert disabled.status_code == 303
    assert client.get(f"/api/v1/admin/webhooks/{listed['id']}", headers=make.headers("admin")).json["active"] is False
    assert admin.post(f"{page}/enable", data={"csrf_token": token}).status_code == 303
    rotated = admin.post(f"{page}/rotate-secret", data={"csrf_token": token})
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    assert re.search(r'id="webhook-secret">(whsec_[^<]+)<', rotated.text).group(1) != secret
    assert client.post("/api/v1/dispatch/complaints", json={"channel": "phone", "category": "impolite",
                                                             "text": "Rude.", "subject": "hotline"},
                       headers=make.headers("dispatcher")).status_code == 201
    receiver.script = [500]
    webhooks.deliver_due()  # the outbox job's work: the event is offered to the receiver, which fails it
    [delivery] = webhooks.deliveries(subscription_id=listed["id"], status=None, cursor=None, limit=10)["items"]
    shown = admin.get(page)
    assert "complaint.opened" in shown.text and f"/deliveries/{delivery.id}/replay" in shown.text
    assert "500" in shown.text
    replayed = admin.post(f"{page}/deliveries/{delivery.id}/replay", data={"csrf_token": token})
    assert replayed.status_code == 303 and "done=replayed" in replayed.headers["Location"]
    bad = admin.post("/console/admin/webhooks", data={"csrf_token": token, "url": "ftp://x", "event_types": ["nope"]})
    assert bad.status_code == 422 and "url: " in bad.text and "event_types.0: " in bad.text
    assert admin.post("/console/admin/webhooks", data={"url": "https://a.example.com/"}).status_code == 400


def test_jobs_and_their_runs(console_as):
    """Every declared job is listed with its schedule; a job that ran shows the run's outcome and counts."""
    admin = console_as("admin")
    listed = admin.get("/console/admin/jobs")
    assert all(job.name in listed.text for job in jobs.JOBS)
    name = jobs.JOBS[0].name
    jobs.run(name)
    runs = admin.get(f"/console/admin/jobs/{name}")
    assert runs.status_code == 200 and ("ok" in runs.text or "failed" in runs.text)
    assert admin.get("/console/admin/jobs/no_such_job").status_code == 404


def test_staff_are_created_with_their_first_token_once_and_deactivated(client, make, console_as, csrf_of):
    """The first API token is on the answering page only; deactivating stops it; an admin cannot deactivate
    themselves; a duplicate username names the field."""
    admin = console_as("admin")
    token = csrf_of(admin, "/console/admin/staff")
    made = admin.post("/console/admin/staff", data={"csrf_token": token, "username": "night.mechanic",
                                                    "role": "maintenance"})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    api_token = re.search(r'id="staff-token">(fos_[^<]+)<', made.text).group(1)
    assert client.get("/api/v1/admin/tokens", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
    listed = admin.get("/console/admin/staff")
    assert "night.mechanic" in listed.text and api_token not in listed.text
    [user] = [u for u in client.get("/api/v1/admin/staff", headers=make.headers("admin")).json["items"]
              if u["username"] == "night.mechanic"]
    gone = admin.post(f"/console/admin/staff/{user['id']}/deactivate", data={"csrf_token": token})
    assert gone.status_code == 303
    assert client.get("/api/v1/admin/tokens", headers={"Authorization": f"Bearer {api_token}"}).status_code == 401
    own = admin.post(f"/console/admin/staff/{staff_id(admin)}/deactivate", data={"csrf_token": token})
    assert own.status_code == 409 and "不能停用自己的账号" in own.text
    twice = admin.post("/console/admin/staff", data={"csrf_token": token, "username": "Night.Mechanic",
                                                     "role": "dispatcher"})
    assert twice.status_code == 409 and "username: " in twice.text
    assert console_as("quality").post(f"/console/admin/staff/{staff_id(admin)}/deactivate",
                                      data={"csrf_token": token}).status_code in (400, 403)


def test_staff_page_header_names_the_signed_in_admin_and_the_role_is_chosen_in_words(console_as):
    """The staff page's list does not hide the header's signed-in user; the new-staff form has no role chosen
    (a required select with an empty first option) and shows roles, in the list too, in words."""
    admin = console_as("admin")
    page_zh = admin.get("/console/admin/staff").text
    assert f'id="whoami">{admin.username}</strong> (管理员)' in page_zh
    select = re.search(r'<select id="staff-role"[^>]*>(.*?)</select>', page_zh, re.S)
    assert "required" in select.group(0)
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)<', select.group(1))
    assert options[0] == ("", "请选择角色") and ("maintenance", "车辆维护") in options
    assert f'<tr id="staff-{admin.username}"><td>{admin.username}</td><td>管理员</td>' in page_zh
    page_en = admin.get("/console/admin/staff?lang=en").text
    assert f'id="whoami">{admin.username}</strong> (Admin)' in page_en and ">Choose a role<" in page_en
    token = re.search(r'name="csrf_token" value="([^"]+)"', page_zh).group(1)
    unchosen = admin.post("/console/admin/staff", data={"csrf_token": token, "username": "no.role", "role": ""})
    assert unchosen.status_code in (400, 422) and "role" in unchosen.text
