"""A task's timeline in the console's words (issue 25's walk): op statuses, event and review kinds, conflict
reasons, field names and values from the vocabularies, and times in the depot's zone, never codes or UTC ISO."""
import re
from datetime import datetime, timedelta

from server.clock import local_zone
from server.services import appointments
from tests.console.test_task_page import courier, device  # noqa: F401 - fixtures
from tests.sync.test_appointment_attempts import HERE, _op, _push, _window, clock  # noqa: F401 - clock: fixture
from tests.sync.test_handover import AT_DOOR, codes, upload

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def _cells(html: str) -> str:
    """The timeline's and the settle section's text, tags dropped."""
    start = html.index('id="settle"') if 'id="settle"' in html else html.index('id="timeline"')
    return re.sub(r"<[^>]+>", " ", html[start:])


def _story(make, client, courier, device, clock):  # noqa: F811
    """Tasks whose timelines hold every kind of entry: a damaged, miscounted parcel refused (a return task); a window
    not attempted; a window under review; a conflict (another courier's task); an upstream scan."""
    refused = make.task(courier=courier)
    parcel = refused["parcels"][0]
    photo = upload(device)
    inspect = {"items": [{"parcel_no": parcel["parcel_no"], "counted": parcel["count"] + 1, "condition": "damaged"}],
               "customer_accepted": False, "photos": [photo]}
    assert codes(device.push([device.op("stop.arrive", refused["id"], AT_DOOR),
                              device.op("pod.inspect", refused["id"], inspect),
                              device.op("pod.refuse", refused["id"], {"reason": "damaged", "note": "crushed"})]
                             )["results"]) == [("applied", None)] * 3
    start = clock.now() + timedelta(hours=1)
    missed = make.task(courier=courier, window=_window(start))
    spec = make.task_spec(window=_window(start))
    spec["recipient"] = {k: v for k, v in spec["recipient"].items() if k not in ("lat", "lon")}
    review = make.task(courier=courier, **spec)
    _push(device, _op(device, clock, "appointment.confirm", review["id"], {"window": review["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=10))
    [arrived] = _push(device, _op(device, clock, "stop.arrive", review["id"], HERE))
    assert arrived["entity"]["data"]["appointment"]["windows"][-1]["outcome"] == "review"
    clock.set(start + timedelta(hours=2, minutes=1))
    assert appointments.sweep_missed()["not_attempted"] == 1
    stale = make.task(courier=courier)
    make.assign(stale["id"], make.courier()["id"])
    [conflicted] = _push(device, _op(device, clock, "stop.arrive", stale["id"], AT_DOOR) | {
        "base_version": stale["version"]})
    assert conflicted["status"] == "conflict"
    return {"refused": refused, "missed": missed, "review": review, "stale": stale}


def _kv(html: str) -> list[tuple[str, str]]:
    """The details column's (name, value) pairs."""
    return re.findall(r'<span class="kv">([^<:]+): ([^<]*)</span>', html)


def test_a_tasks_timeline_in_chinese_words_and_depot_times(console_as, client, make, courier, device, clock):  # noqa: F811
    """Every field named in Chinese; op statuses, event kinds, review and conflict reasons, refusal reasons, scan
    sources and notes in words; times in the depot's zone: none of the codes the walk found, no UTC ISO time."""
    tasks = _story(make, client, courier, device, clock)
    dispatcher = console_as("dispatcher")
    pages = {name: dispatcher.get(f"/console/tasks/{task['id']}?lang=zh").get_data(as_text=True)
             for name, task in tasks.items()}
    for name, html in pages.items():
        text = _cells(html)
        for raw in ("applied", "attempt:", "counted=", "damaged", "return_task_waybill", "appointment.",
                    "upstream", "handheld", "handover", "inspection", "reassigned", "location_unknown",
                    "clock_suspect", "not_attempted", "provisional_outcome", "system", "stop.arrive", "pod."):
            assert raw not in text, (name, raw)
        assert not ISO.search(text), (name, ISO.search(text).group(0))
        for field, _ in _kv(html):
            assert re.search(r"[\u4e00-\u9fff]", field), (name, field)  # every field named in Chinese
    refused = _cells(pages["refused"])
    assert "原因: 货物破损" in refused and "清点件数=" in refused and "状况=破损" in refused
    assert "退回运单: RET-" in refused and "来源: 交接" in refused and "验货发现问题" in refused
    assert "已生效" in refused and "设备操作 #" in refused
    assert "时段判定：承诺时段未上门" in pages["missed"] and "判定依据: 时段结束自动判定" in pages["missed"]
    review = pages["review"]
    assert "时段复核：地址没有坐标" in review and "方式: 电话" in review and "第几次预约: 1" in review
    # The window's start in the depot's zone, as the settle section shows it.
    start = re.search(r"开始: (\d{4}-\d\d-\d\d \d\d:\d\d)", _cells(review)).group(1)
    window = client.get(f"/api/v1/dispatch/tasks/{tasks['review']['id']}", headers=make.headers("dispatcher")
                        ).json["window"]
    assert start == datetime.fromisoformat(window["start"]).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")
    stale = re.sub(r"\s+", " ", _cells(pages["stale"]))
    assert "冲突：任务已改派给别人 #" in stale and "冲突: 任务已改派给别人" in stale and "状态: 待处理" in stale
    assert "已按现场事实生效" in stale and "Applied as a field fact" not in stale


def test_the_same_timeline_in_english_words(console_as, client, make, courier, device, clock):  # noqa: F811
    """The switch: the same entries in English words (no Chinese left in the timeline's words)."""
    tasks = _story(make, client, courier, device, clock)
    dispatcher = console_as("dispatcher")
    refused = _cells(dispatcher.get(f"/console/tasks/{tasks['refused']['id']}?lang=en").get_data(as_text=True))
    assert "reason: damaged" in refused and "return waybill: RET-" in refused and "source: handover" in refused
    assert "found at the inspection" in refused and "applied" in refused and "device op #" in refused
    missed = _cells(dispatcher.get(f"/console/tasks/{tasks['missed']['id']}?lang=en").get_data(as_text=True))
    assert "window decided: not attempted" in missed and "decided by: the end-of-window sweep" in missed
    stale = _cells(dispatcher.get(f"/console/tasks/{tasks['stale']['id']}?lang=en").get_data(as_text=True))
    assert "Conflict: Reassigned to another courier" in stale
    for text in (refused, missed, stale):
        assert not ISO.search(text)
        assert not re.search(r"[\u4e00-\u9fff]", re.sub(r'lang="zh-CN">[^<]*<', "", text).replace("中文", ""))
