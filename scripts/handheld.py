#!/usr/bin/env python
"""A handheld from the command line: enroll, queue ops, sync, show state (sync.client underneath).

The day begins with `check conduct.pre_shift`, `check vehicle.pre_trip` and
`shift start` (a handover needs an open shift). The handover at the door: verify,
inspect, pay, sign, refuse, alternate, pickup queue the pod.* and pickup.collect
ops (amounts in fen); a task's handover PIN and the open shift are checked here,
offline, before anything is queued. `scan TASK PARCEL_NO EVENT` queues a parcel's scan
(`show` lists each task's parcels by number, with their pieces). `appeal VIOLATION_ID "REASON"`
queues an appeal of one of your violations (`show` lists them under your courier record, with
their status and their appeal's).

Exit status: 0 done; 1 the server refused (its problem's title, detail and code
are printed on one line), the store is not enrolled, a PIN is refused or the
task (or violation) is not on this handheld, or no shift is open for a handover; 2 the server cannot be reached (or the command line is wrong).
"""
import argparse
import json
import os
import socket
import sqlite3
import sys
import urllib.error
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.grade_words import why  # noqa: E402 - plain Python: the grade's reasons as the office reads them
from schemas.vocab import (ALTERNATE_PLACES, AUTHORIZATION_VIA, CHECKLIST_KINDS,  # noqa: E402 - plain tuples
                           ITEM_CONDITIONS, PAYMENT_METHODS, REFUSAL_REASONS, SCAN_EVENTS, VERIFY_METHODS)
from sync.client import (Handheld, HttpTransport, PinRefused, Reply, ShiftRequired, SyncFailed,  # noqa: E402
                         Transport, UnknownParcel)




class Unreachable(Exception):
    """Nothing answers at the server's address: retrying will not help a person at a prompt."""


class NotOnHandheld(Exception):
    """The command needs the task as pulled, and this handheld does not hold it."""


def _parts(spec: str, what: str, least: int, most: int) -> list[str]:
    """A colon-separated command-line value, its number of parts checked."""
    parts = spec.split(":", most - 1)
    if not least <= len(parts) <= most or not all(parts[:least]):
        raise argparse.ArgumentTypeError(f"{spec!r}: expected {what}")
    return parts


def _count(text: str, spec: str) -> int:
    """A whole, non-negative count or amount."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{spec!r}: {text!r} is not a whole number")
    return int(text)


def item_arg(spec: str) -> dict:
    """--item PARCEL_NO:COUNTED[:CONDITION] (condition ok, damaged or missing; default ok)."""
    parts = _parts(spec, "PARCEL_NO:COUNTED[:CONDITION]", 2, 3)
    condition = parts[2] if len(parts) == 3 else "ok"
    if condition not in ITEM_CONDITIONS:
        raise argparse.ArgumentTypeError(f"{spec!r}: condition must be one of {', '.join(ITEM_CONDITIONS)}")
    return {"parcel_no": parts[0], "counted": _count(parts[1], spec), "condition": condition}


def parcel_arg(spec: str) -> dict:
    """--parcel PARCEL_NO[:COUNT[:DESCRIPTION]] (count default 1)."""
    parts = _parts(spec, "PARCEL_NO[:COUNT[:DESCRIPTION]]", 1, 3)
    return {"parcel_no": parts[0], "count": _count(parts[1], spec) if len(parts) > 1 else 1,
            "description": parts[2] if len(parts) > 2 else ""}


def fee_arg(spec: str) -> dict:
    """--fee CODE:AMOUNT (fen)."""
    code, amount = _parts(spec, "CODE:AMOUNT (fen)", 2, 2)
    return {"code": code, "amount": _count(amount, spec)}


def _photos(paths: list[str]) -> list[bytes]:
    """The photo files' bytes."""
    return [Path(p).read_bytes() for p in paths]


def _held_task(handheld: Handheld, task_id: str) -> dict:
    """The task as this handheld last pulled it."""
    task = handheld.task(task_id)
    if task is None:
        raise NotOnHandheld(f"task {task_id} is not on this handheld: run 'handheld.py sync' first")
    return task


def _held_van(handheld: Handheld) -> dict:
    """This handheld's van as last pulled."""
    van = next((e["data"] for (entity, _), e in handheld.entities().items() if entity == "vehicle"), None)
    if van is None:
        raise NotOnHandheld("no van is on this handheld: dispatch assigns one, then run 'handheld.py sync'")
    return van


def _check(args, handheld: Handheld) -> int:
    """checklist.submit against the held template of the kind: every item passing but the failed ones."""
    template = next((e["data"] for (entity, _), e in handheld.entities().items()
                     if entity == "checklist_template" and e["data"]["kind"] == args.kind), None)
    if template is None:
        raise NotOnHandheld(f"no {args.kind} checklist is on this handheld: run 'handheld.py sync' first")
    unknown = set(args.fail) - {item["code"] for item in template["items"]}
    if unknown:
        raise NotOnHandheld(f"the {args.kind} checklist has no item {', '.join(sorted(unknown))}")
    photo = handheld.add_blob(Path(args.photo).read_bytes()) if args.photo else None
    passing = {"pass_fail": True, "number": 0, "choice": "tied", "text": "ok"}
    answers = []
    for item in template["items"]:
        value = args.odometer if item["code"] == "odometer" else passing.get(item["type"])
        if item["code"] in args.fail:
            value = False if item["type"] == "pass_fail" else value
        answers.append({"item": item["code"], "value": value, **({"photo": photo} if photo else {})})
    van = _held_van(handheld) if args.kind.startswith("vehicle.") else None
    report = (van or {}).get("last_report") if args.kind == "vehicle.pre_trip" else None
    return handheld.submit_checklist(template, answers, lat=args.lat, lon=args.lon, vehicle_id=van and van["id"],
                                     acknowledged_report_id=report and report["id"],
                                     blobs=[photo] if photo else [])[0]


class CliTransport:
    """Wraps the client's transport: fails fast when nothing listens, and notes what the server said."""

    def __init__(self, inner: Transport, server: str):
        """Observe the inner transport's requests to `server`."""
        self.inner, self.server = inner, server
        self.problem: Reply | None = None
        self.results: dict[int, dict] = {}
        self.pulled = 0

    def request(self, method, path, *, headers, body=None, query=None) -> Reply:
        """Send; a refused connection or an unknown host ends the command, other failures are retried."""
        try:
            reply = self.inner.request(method, path, headers=headers, body=body, query=query)
        except ConnectionError as exc:
            reason = getattr(exc.__cause__, "reason", exc.__cause__)
            if isinstance(reason, ConnectionRefusedError):
                raise Unreachable(f"cannot reach {self.server}: connection refused") from exc
            if isinstance(reason, socket.gaierror):
                raise Unreachable(f"cannot reach {self.server}: unknown host") from exc
            raise
        # The refusal a SyncFailed is about is always the latest answer (a HEAD's 404 is not one).
        self.problem = reply if reply.status >= 400 else None
        if path == "/sync/push" and reply.status == 200:
            self.results.update((r["seq"], r) for r in reply.json()["results"])
        elif path == "/sync/pull" and reply.status == 200:
            self.pulled += len(reply.json().get("changes", ()))
        return reply


def describe_problem(reply: Reply) -> str:
    """A refusal in one line: status, title, detail, code (and the protocol versions on a 426)."""
    try:
        problem = reply.json() or {}
    except ValueError:
        problem = {}
    if not isinstance(problem, dict) or "title" not in problem:
        return f"the server answered {reply.status}: {reply.body[:200].decode(errors='replace')}"
    line = f"{reply.status} {problem['title']}: {problem.get('detail', '')}".rstrip(": ")
    extras = [f"code {problem['code']}"] if problem.get("code") else []
    if problem.get("supported"):
        extras.append("server speaks protocol " + ", ".join(map(str, problem["supported"])))
    if problem.get("fields"):
        extras.append("fields " + json.dumps(problem["fields"], sort_keys=True))
    return line + (f" ({'; '.join(extras)})" if extras else "")


def sync_summary(handheld: Handheld, seen: CliTransport) -> dict:
    """Push and pull, then say what became of every op the server answered, what came down, and the
    receipts of the handovers completed since the last sync (each one's number and page, to show the customer)."""
    before = handheld.receipts()
    outcome = handheld.sync()
    issued = {task_id: receipt for task_id, receipt in handheld.receipts().items() if task_id not in before}
    statuses = Counter(r["status"] for r in seen.results.values())
    rejected = [{"seq": seq, "code": r.get("code"), "detail": r.get("detail")}
                for seq, r in sorted(seen.results.items()) if r["status"] == "rejected"]
    return {"pushed": outcome["pushed"], "applied": statuses["applied"], "rejected": len(rejected),
            "rejected_codes": dict(Counter(r["code"] for r in rejected)), "rejected_ops": rejected,
            "conflicts": statuses["conflict"], "pulled": seen.pulled, "pending": outcome["pending"],
            "last_seq": outcome["last_seq"], "scope": outcome["scope"],
            "receipts": [{"task_id": task_id, "waybill_no": (handheld.task(task_id) or {}).get("waybill_no"),
                          **receipt} for task_id, receipt in sorted(issued.items())]}


def _handover_commands(sub) -> None:
    """The handover at the door: one subcommand per pod.* op, and pickup.collect."""
    verify = sub.add_parser("verify", help="queue a recipient check (a task's PIN is checked offline first)")
    verify.add_argument("task_id")
    verify.add_argument("name", help="the name of the person taking the parcel")
    verify.add_argument("--method", choices=VERIFY_METHODS, help="default: pin with --pin, else id_check")
    verify.add_argument("--relation", help="a proxy's relation to the recipient")
    verify.add_argument("--pin", help="the handover PIN the recipient gives")
    inspect = sub.add_parser("inspect", help="queue the customer's count and inspection")
    inspect.add_argument("task_id")
    inspect.add_argument("--item", action="append", type=item_arg, default=[], metavar="PARCEL_NO:COUNTED[:CONDITION]",
                         help="each parcel as counted (default: every parcel of the task, as expected, ok)")
    inspect.add_argument("--refused", action="store_true", help="the customer did not accept the parcel")
    inspect.add_argument("--photo", action="append", default=[], help="JPEG/PNG file (needed for damage)")
    pay = sub.add_parser("pay", help="queue the payment taken (COD plus published fees)")
    pay.add_argument("task_id")
    pay.add_argument("amount", type=int, nargs="?", help="in fen (default: the task's amount due)")
    pay.add_argument("--method", choices=PAYMENT_METHODS, default="cash")
    sign = sub.add_parser("sign", help="queue the recipient's signature")
    sign.add_argument("task_id")
    sign.add_argument("signature", help="the signature image file")
    sign.add_argument("signer_name")
    sign.add_argument("lat", type=float)
    sign.add_argument("lon", type=float)
    sign.add_argument("--gift-disclosed", action="store_true", help="the customer was told about the gift")
    refuse = sub.add_parser("refuse", help="queue the customer's refusal after inspection")
    refuse.add_argument("task_id")
    refuse.add_argument("reason", choices=REFUSAL_REASONS)
    refuse.add_argument("--note")
    refuse.add_argument("--photo", action="append", default=[], help="JPEG/PNG file")
    alternate = sub.add_parser("alternate", help="queue a delivery to a locker, station or neighbour")
    alternate.add_argument("task_id")
    alternate.add_argument("place", choices=ALTERNATE_PLACES)
    alternate.add_argument("--via", choices=AUTHORIZATION_VIA, required=True,
                           help="the customer's consent: on their page, or a phone contact that reached them")
    alternate.add_argument("--reference", default="", help="what identifies the consent (needed with contact)")
    alternate.add_argument("--photo", action="append", default=[], help="JPEG/PNG file")
    pickup = sub.add_parser("pickup", help="queue a pickup: parcels, published fees, the sender's signature")
    pickup.add_argument("task_id")
    pickup.add_argument("signature", help="the signature image file")
    pickup.add_argument("signer_name")
    pickup.add_argument("--parcel", action="append", type=parcel_arg, required=True,
                        metavar="PARCEL_NO[:COUNT[:DESCRIPTION]]")
    pickup.add_argument("--fee", action="append", type=fee_arg, default=[], metavar="CODE:AMOUNT")
    pickup.add_argument("--pay", choices=PAYMENT_METHODS, help="the fees were paid now, this way")


def main(argv=None, transport: Transport | None = None) -> int:
    """Parse the command and run it against the store file (transport: tests pass an in-process one)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="handheld.sqlite3", help="local store file")
    parser.add_argument("--server", default="http://127.0.0.1:8000/api/v1",
                        help="the API's base URL (default: %(default)s; serve-demo.sh with another "
                             "FIELDOPS_PORT: http://127.0.0.1:PORT/api/v1)")
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="enroll with a one-time code")
    enroll.add_argument("code")
    enroll.add_argument("--name", default="cli-handheld")
    note = sub.add_parser("note", help="queue a note on a task")
    note.add_argument("task_id")
    note.add_argument("text")
    note.add_argument("--photo", action="append", default=[], help="JPEG/PNG file to attach")
    arrive = sub.add_parser("arrive", help="queue an arrival at a task's stop")
    arrive.add_argument("task_id")
    arrive.add_argument("lat", type=float)
    arrive.add_argument("lon", type=float)
    scan = sub.add_parser("scan", help="queue a parcel scan (the parcel must be one of the task's)")
    scan.add_argument("task_id")
    scan.add_argument("parcel_no")
    scan.add_argument("event", choices=SCAN_EVENTS)
    scan.add_argument("--note")
    check = sub.add_parser("check", help="queue a checklist: every item passes but those --fail names "
                                         "(a vehicle check is of this handheld's van)")
    check.add_argument("kind", choices=CHECKLIST_KINDS)
    check.add_argument("lat", type=float, help="where the check is made")
    check.add_argument("lon", type=float)
    check.add_argument("--fail", action="append", default=[], metavar="ITEM", help="an item that failed")
    check.add_argument("--photo", help="JPEG/PNG file of the failures")
    check.add_argument("--odometer", type=int, default=0, help="the van's odometer (vehicle checks)")
    shift = sub.add_parser("shift", help="queue shift.start or shift.end on this handheld's van")
    shift.add_argument("kind", choices=("start", "end"))
    shift.add_argument("odometer", type=int)
    appeal = sub.add_parser("appeal", help="queue an appeal of one of your violations (`show` lists them, by id)")
    appeal.add_argument("violation_id", type=int)
    appeal.add_argument("reason", help="why the violation is wrong, in your words")
    appeal.add_argument("--photo", action="append", default=[], help="JPEG/PNG file of the evidence")
    _handover_commands(sub)
    sub.add_parser("sync", help="push the queue, pull changes")
    sub.add_parser("show", help="print the local queue and store")
    args = parser.parse_args(argv)

    seen = CliTransport(transport or HttpTransport(args.server), args.server)
    try:
        handheld = Handheld(args.store, seen)
    except sqlite3.Error as exc:
        print(f"error: cannot open the store {args.store}: {exc}", file=sys.stderr)
        return 1
    try:
        status = _run(args, handheld, seen)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # `show | head`: the reader left; not the server's fault
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (PinRefused, ShiftRequired, NotOnHandheld, UnknownParcel) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:
        print(f"error: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 2
    except SyncFailed as exc:
        print(f"error: {describe_problem(seen.problem) if seen.problem else exc}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        handheld.close()


def _run(args, handheld: Handheld, seen: CliTransport) -> int:
    """The command itself; errors are turned into one line by main.

    A command on a task works only on one this handheld holds (as a handheld's screen
    offers only those): a mistyped or not yet pulled id is refused here, before anything
    is queued, whichever command names it.
    """
    if getattr(args, "task_id", None) is not None:
        _held_task(handheld, args.task_id)
    if args.command == "enroll":
        print(f"enrolled as {handheld.enroll(args.code, args.name)}")
    elif args.command == "note":
        shas = [handheld.add_blob(Path(p).read_bytes()) for p in args.photo]
        print(f"queued seq {handheld.queue('task.note', args.task_id, {'text': args.text, 'photos': shas}, blobs=shas)}")
    elif args.command == "arrive":
        print(f"queued seq {handheld.queue('stop.arrive', args.task_id, {'lat': args.lat, 'lon': args.lon})}")
    elif args.command == "scan":
        print(f"queued seq {handheld.scan(args.task_id, parcel_no=args.parcel_no, event=args.event, note=args.note)}")
    elif args.command == "check":
        print(f"queued seq {_check(args, handheld)}")
    elif args.command == "shift":
        print(f"queued seq {handheld.shift(args.kind, _held_van(handheld)['id'], args.odometer)}")
    elif args.command == "appeal":
        seq, appeal_id = handheld.appeal(_held_violation(handheld, args.violation_id)["id"], args.reason,
                                         photos=_photos(args.photo))
        print(f"queued seq {seq} (appeal {appeal_id})")
    elif args.command in HANDOVER:
        print(f"queued seq {HANDOVER[args.command](args, handheld)}")
    elif args.command == "sync":
        if handheld.device_id is None:
            print("error: not enrolled: run 'handheld.py enroll CODE' first", file=sys.stderr)
            return 1
        print(json.dumps(sync_summary(handheld, seen), indent=2))
    elif args.command == "show":
        entities = handheld.entities()
        print(json.dumps({
            "device_id": handheld.device_id, "pending": handheld.pending(),
            "results": handheld.results(), "checksum": handheld.checksum(),
            "entities": {f"{e}:{i}": {"version": v["version"],
                                      **({"status": v["data"]["status"]} if "status" in v["data"] else {}),
                                      **(_task_facts(v["data"]) if e == "task" else
                                         _courier_facts(v["data"]) if e == "courier" else {})}
                         for (e, i), v in sorted(entities.items())}}, indent=2, default=str))
    return 0


def _task_facts(data: dict) -> dict:
    """What `show` tells of a task: which one it is, where its door is, its parcels (each parcel's number, what
    `scan` and `inspect --item` name, with its count of pieces), what is due, its receipt once handed over."""
    recipient = data.get("recipient") or {}
    parcels = {p["parcel_no"]: p.get("count") for p in data.get("parcels") or ()}
    return {"waybill_no": data.get("waybill_no"), "kind": data.get("kind"), "lat": recipient.get("lat"),
            "lon": recipient.get("lon"), "parcels": parcels,
            "amount_due": data.get("amount_due"),
            "pin_required": data.get("pin_required"), "gift_description": data.get("gift_description"),
            "receipt": (data.get("handover") or {}).get("receipt")}


def _courier_facts(data: dict) -> dict:
    """What `show` tells of the courier's own record: the grade, its score and reasons in short, and each violation
    (its id is what `appeal` names) with its status and its appeal's."""
    return {"grade": data.get("grade"), "grade_score": data.get("grade_score"),
            "grade_why": why(data.get("grade_reasons") or [], data.get("grade_score")),
            "violations": [{"id": v["id"], "code": v["code"], "severity": v.get("severity"),
                            "occurred_at": v.get("occurred_at"), "status": v["status"],
                            "appeal": (v.get("appeal") or {}).get("status")}
                           for v in data.get("violations") or ()]}


def _held_violation(handheld: Handheld, violation_id: int) -> dict:
    """One of the courier's violations as last pulled (the record lists their 20 newest)."""
    record = next((e["data"] for (entity, _), e in handheld.entities().items() if entity == "courier"), None)
    if record is None:
        raise NotOnHandheld("your record is not on this handheld: run 'handheld.py sync' first")
    violation = next((v for v in record.get("violations") or () if v["id"] == violation_id), None)
    if violation is None:
        raise NotOnHandheld(f"violation {violation_id} is not on your record here: 'handheld.py show' lists yours "
                            "(run 'handheld.py sync' first for a new one)")
    return violation


def _verify(args, handheld: Handheld) -> int:
    """pod.verify_recipient; the PIN checked offline."""
    method = args.method or ("pin" if args.pin else "id_check")
    return handheld.verify_recipient(args.task_id, method=method, name=args.name, relation=args.relation,
                                     pin=args.pin)


def _inspect(args, handheld: Handheld) -> int:
    """pod.inspect; without --item every parcel of the task as expected."""
    items = args.item or [{"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "ok"}
                          for p in _held_task(handheld, args.task_id)["parcels"]]
    return handheld.inspect(args.task_id, items=items, customer_accepted=not args.refused,
                            photos=_photos(args.photo))


def _pay(args, handheld: Handheld) -> int:
    """pod.collect_payment; by default the amount due the task shows."""
    amount = args.amount if args.amount is not None else _held_task(handheld, args.task_id)["amount_due"]
    return handheld.collect_payment(args.task_id, amount=amount, method=args.method)


def _sign(args, handheld: Handheld) -> int:
    """pod.sign."""
    return handheld.sign(args.task_id, signature=Path(args.signature).read_bytes(), signer_name=args.signer_name,
                         lat=args.lat, lon=args.lon, gift_disclosed=args.gift_disclosed)


def _refuse(args, handheld: Handheld) -> int:
    """pod.refuse."""
    return handheld.refuse(args.task_id, reason=args.reason, note=args.note, photos=_photos(args.photo))


def _alternate(args, handheld: Handheld) -> int:
    """pod.deliver_alternate."""
    return handheld.deliver_alternate(args.task_id, place=args.place, via=args.via, reference=args.reference,
                                      photos=_photos(args.photo))


def _pickup(args, handheld: Handheld) -> int:
    """pickup.collect; --pay takes the fees' total."""
    payment = {"amount": sum(fee["amount"] for fee in args.fee), "method": args.pay} if args.pay else None
    return handheld.collect_pickup(args.task_id, parcels=args.parcel, fees=args.fee,
                                   signature=Path(args.signature).read_bytes(), signer_name=args.signer_name,
                                   payment=payment)


HANDOVER = {"verify": _verify, "inspect": _inspect, "pay": _pay, "sign": _sign, "refuse": _refuse,
            "alternate": _alternate, "pickup": _pickup}


if __name__ == "__main__":
    sys.exit(main())
