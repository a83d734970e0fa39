"""The suite's log audit: every log line of the run is kept, and no secret the run issued may be in one.

Each staff token, device token, enrollment code and customer link token minted
during the run is recorded (the minting functions in server.ids, and the link
signer in server.services.customer_links, are wrapped); every record the
app logs in this process goes, formatted by the production JsonFormatter, to
one file; gunicorn children write theirs to the files ServerProcess is given.
At the end of the session those files are searched for every issued secret
(also without its kind prefix, and codes in any letter case), and a find
fails the run.

Customers' and couriers' phone numbers and addresses are audited the same way:
every one the run stores through the ORM in this process (a flush listener on
Task and Courier) is searched for, as typed and, for a phone, as its digits
alone (not inside a longer number); an address also as JSON escapes it. Values
too short or too plain to be told from other text (a generated "0") are left
out, and so are the project's own string literals: Hypothesis (and so
schemathesis) mines the code under test for constants and types them into
generated addresses, so a task's address can be an error message such as
"Not UTF-8." that the app then rightly logs. Phones and addresses that only
gunicorn children store are not recorded.
"""
import ast
import functools
import json
import logging
import os
import re
import sys
import tempfile

import pytest

from server import ids, process
from server.services import customer_links
from server.logs import JsonFormatter

_issued: set[str] = set()
_personal: set[str] = set()  # phone numbers and addresses stored during the run
_watched: list[str] = []
_state: dict = {}
_MINTS = ("new_token", "new_enrollment_code")
_TOKEN_BODY = 43  # 32 random bytes, unpadded urlsafe base64


def watch(path: str) -> None:
    """Add a log file written by another process (a server under test) to the audit."""
    _watched.append(str(path))


def _recording(mint):
    """Wrap a minting function so that the audit knows every secret it returns."""
    @functools.wraps(mint)
    def wrapper(*args, **kwargs):
        secret = mint(*args, **kwargs)
        _issued.add(secret)
        return secret
    return wrapper


def _record_mints() -> None:
    """Wrap the mints in server.ids and wherever a module already imported them, and the link signer."""
    customer_links.link_token = _recording(customer_links.link_token)
    originals = {name: getattr(ids, name) for name in _MINTS}
    wrapped = {name: _recording(mint) for name, mint in originals.items()}
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").split(".")[0] not in ("server", "sync"):
            continue
        for name, mint in originals.items():
            if getattr(module, name, None) is mint:
                setattr(module, name, wrapped[name])


def _plausible_phone(value) -> bool:
    """A phone number worth searching for: 8 or more digits, not all alike (generated input can be anything)."""
    digits = re.sub(r"\D", "", value) if isinstance(value, str) else ""
    return len(digits) >= 8 and len(set(digits)) >= 4 and re.fullmatch(r"\+?[\d ()-]+", value.strip()) is not None


def _plausible_address(value) -> bool:
    """An address worth searching for: 10 or more characters with a letter in them and more than one word."""
    return (isinstance(value, str) and len(value.strip()) >= 10 and any(c.isalpha() for c in value)
            and (" " in value.strip() or any(ord(c) > 0x2e80 for c in value)))


def _record_personal() -> None:
    """Remember every phone number and address flushed to the database in this process."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from server.models import Courier, Task

    @event.listens_for(Session, "before_flush")
    def collect(session, _context, _instances):
        for obj in (*session.new, *session.dirty):
            if isinstance(obj, Task):
                values = (("phone", obj.recipient_phone), ("address", obj.address))
            elif isinstance(obj, Courier):
                values = (("phone", obj.phone),)
            else:
                continue
            for kind, value in values:
                if (_plausible_phone if kind == "phone" else _plausible_address)(value):
                    _personal.add(value.strip())


def _source_literals() -> set[str]:
    """Every string literal in the app's own code (server/, sync/, schemas/): text the app writes itself."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    literals: set[str] = set()
    for package in ("server", "sync", "schemas"):
        for folder, _dirs, files in os.walk(os.path.join(root, package)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(folder, name), encoding="utf-8") as source:
                        tree = ast.parse(source.read())
                    literals |= {node.value.strip() for node in ast.walk(tree)
                                 if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return literals


def personal_leaks(text: str, values: set[str]) -> set[str]:
    """The phone numbers and addresses found in text (a phone's digits only as a whole number)."""
    numbers = set(re.findall(r"\d+", text))
    found = set()
    for value in values:
        digits = re.sub(r"\D", "", value)
        if value in text or json.dumps(value)[1:-1] in text or (_plausible_phone(value) and digits in numbers):
            found.add(value)
    return found


def _watch_servers() -> None:
    """Audit the log file of every gunicorn the suite starts."""
    start = process.ServerProcess.start

    @functools.wraps(start)
    def recording_start(self, *args, **kwargs):
        if self.log_path != os.devnull:
            watch(self.log_path)
        return start(self, *args, **kwargs)
    process.ServerProcess.start = recording_start


def pytest_configure(config):
    """Collect every log line of the run into one file, and record every issued secret."""
    fd, path = tempfile.mkstemp(prefix="fieldops-test-logs-", suffix=".jsonl")
    os.close(fd)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    # The app's logging set-up sees a JSON handler on the root and adds no other.
    logging.getLogger().addHandler(handler)
    _state.update(path=path, handler=handler)
    _watched.append(path)
    _record_mints()
    _record_personal()
    _watch_servers()
    # gunicorn children log access lines too (ServerProcess passes this on).
    os.environ["FIELDOPS_LOG_LEVEL"] = "INFO"


def leaks(text: str, secrets: set[str]) -> set[str]:
    """The secrets found in text: tokens with or without prefix, codes in any case, link tokens or their signature."""
    links = {secret for secret in secrets if secret.startswith(customer_links.LINK_TOKEN_PREFIX)}
    bodies = {secret[4:]: secret for secret in secrets - links if secret.startswith("fo")}
    codes = {secret for secret in secrets if not secret.startswith("fo")}
    # A link token is payload.signature: the signature alone is what cannot be forged.
    found = {secret for secret in links if secret[4:] in text or secret.rsplit(".", 1)[1] in text}
    # A token's body lies inside a run of at least its length of its characters;
    # such runs are rare in log lines, so each window of them can be checked.
    for run in re.findall(r"[A-Za-z0-9_-]{%d,}" % _TOKEN_BODY, text):
        found |= {bodies[run[i:i + _TOKEN_BODY]] for i in range(len(run) - _TOKEN_BODY + 1)
                  if run[i:i + _TOKEN_BODY] in bodies}
    if codes:
        width = len(next(iter(codes)))
        for run in re.findall(r"[%s]{%d,}" % (ids.ENROLLMENT_CODE_ALPHABET, width), text.upper()):
            found |= {run[i:i + width] for i in range(len(run) - width + 1)} & codes
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any log line holds a secret the run issued."""
    handler = _state.get("handler")
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    text = ""
    for path in _watched:
        try:
            with open(path, encoding="utf-8", errors="replace") as log:
                text += log.read() + "\n"
        except FileNotFoundError:
            pass
    found = leaks(text, _issued)
    personal = personal_leaks(text, _personal - _source_literals())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found or personal:
        if reporter:
            reporter.write_line(f"LOG AUDIT FAILED: {len(found)} of the {len(_issued)} secrets this run issued and "
                                f"{len(personal)} of the {len(_personal)} phone numbers and addresses it stored "
                                f"appear in its logs (kept in {_state['path']}): "
                                f"{sorted(personal)[:5]}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if reporter and (_issued or _personal):
        reporter.write_line(f"log audit: none of the {len(_issued)} issued secrets and none of the "
                            f"{len(_personal)} stored phone numbers and addresses in {len(text.splitlines())} "
                            f"log lines")
    os.unlink(_state["path"])
