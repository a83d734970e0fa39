"""Dispatch: the messages a task's recipient was sent, and their delivery."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.messages import MessageList
from server.auth import OFFICE, require
from server.services import messages

blp = Blueprint("messages", __name__, url_prefix="/api/v1/dispatch/tasks", description="Messages to customers")


@blp.route("/<task_id>/messages")
class TaskMessages(MethodView):
    """A task's messages."""

    @require(*OFFICE)
    @blp.response(200, MessageList)
    def get(self, task_id):
        """Every message made for the task's recipient, oldest first, with its delivery (the phone masked)."""
        return {"items": messages.for_task(task_id=task_id)}
