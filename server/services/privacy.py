"""What customer data a courier may see."""
from server.models import Task


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits: 138****5678."""
    digits = phone.replace(" ", "").replace("-", "")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def phone_for_courier(task: Task) -> str:
    """A courier sees the recipient's number only while the task is theirs and open.

    Everything a courier can read is already restricted to their own tasks, so
    what remains to decide is whether the task is finished.
    """
    return mask_phone(task.recipient_phone) if task.is_finished else task.recipient_phone


def for_courier(task_list: list[Task]) -> list[Task]:
    """Decide what each task shows its courier, just before the dump (CourierTaskOut reads recipient_phone_for_courier).

    Decided per dump, never stored: a task finished in this transaction is
    masked in the same answer.
    """
    for task in task_list:
        task.recipient_phone_for_courier = phone_for_courier(task)
    return task_list
