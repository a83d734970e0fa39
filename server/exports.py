"""Customer data handed out in bulk by a request (a JSON page or a CSV), noted for leak detection once its
answer is built; shared by the API and the console."""
from flask import after_this_request

from server.auth import current_actor
from server.services import leaks

def noted_export(what: str, rows: int) -> None:
    """Note customer data handed out in bulk by this request (leaks.note_export), once its answer is built: the
    note commits in a transaction of its own, which must not expire the rows still to be dumped. A refused
    request notes nothing."""
    actor = current_actor()

    @after_this_request
    def _note(response):
        if response.status_code < 300:
            leaks.note_export(actor=actor, what=what, rows=rows)
        return response
