"""Fault injection for the crash tests, off unless configured: nothing is installed in production.

FAULT_EXIT_AFTER_PUSH_COMMIT names a trigger file. The first worker that answers a
push after the file appears deletes it and exits at once (os._exit): the push's
transaction is committed, its answer never leaves. That is the one moment a random
SIGKILL rarely hits, so a test can stage it: the device never hears its ops were
taken and sends them again, and must get the stored results, not a second effect.
"""
import os

from flask import Flask, request


def init_app(app: Flask) -> None:
    """Install the hook when the trigger file is configured."""
    trigger = app.config.get("FAULT_EXIT_AFTER_PUSH_COMMIT")
    if not trigger:
        return

    @app.after_request
    def _exit_after_push_commit(response):
        # after_request runs once the view returned, i.e. after push committed, before a byte is sent.
        if request.endpoint == "sync.Push" and response.status_code == 200:
            try:
                os.unlink(trigger)  # one worker wins the file: exactly one answer is lost
            except FileNotFoundError:
                return response
            os._exit(70)
        return response
