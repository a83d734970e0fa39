"""A task's messages to the customer on the console: the partial on its own page, the same list the API serves."""
from server.services import messages
from tests.sync.test_customer_messages import confirm, gateway, later_window, sms  # noqa: F401  (fixtures)


def test_a_dispatcher_sees_each_message_and_its_delivery_phone_masked(client, make, sms, gateway,  # noqa: F811
                                                                      console_as):
    """Sent, failed (with the gateway's answer) and their texts; the phone masked; Chinese, English on the switch."""
    task = make.task()
    answer = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/reschedule",
                         json={"window": later_window(task), "reason": "depot closed", "customer_agreed": False},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    confirm(client, make, task)
    gateway.script = [500]
    messages.deliver_due()
    office = console_as("dispatcher")
    page = office.get(f"/console/tasks/{task['id']}/messages")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    phone = task["recipient"]["phone"]
    assert phone not in html and f"{phone[:3]}****{phone[-4:]}" in html
    assert "建议改约" in html and "约定时间" in html and "发送失败，将重试" in html and "已发送" in html
    assert "HTTP 500" in html and task["waybill_no"] in html
    for shown in messages.for_task(task_id=task["id"]):
        assert f'id="message-{shown["id"]}" data-status="{shown["status"]}"' in html
    english = office.get(f"/console/tasks/{task['id']}/messages?lang=en").get_data(as_text=True)
    assert "Window proposed" in english and "Failed, will retry" in english and "Sent" in english
    task_page = office.get(f"/console/tasks/{task['id']}").get_data(as_text=True)  # its own page shows them (in English now)
    assert 'id="task-messages"' in task_page and "Window proposed" in task_page and "HTTP 500" in task_page
    assert phone not in task_page


def test_no_messages_yet_wrong_role_and_unknown_task(make, console_as):
    """An empty list says so; maintenance may not read it (403 page); an unknown task is the 404 page."""
    task = make.task()
    quality = console_as("quality")
    empty = quality.get(f"/console/tasks/{task['id']}/messages")
    assert empty.status_code == 200 and "还没有给顾客的短信。" in empty.get_data(as_text=True)
    assert console_as("maintenance").get(f"/console/tasks/{task['id']}/messages").status_code == 403
    assert quality.get("/console/tasks/t_nope/messages").status_code == 404
