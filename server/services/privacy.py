"""What customer data a courier may see, and how customer-facing pages and receipts mask a person."""
from server import names
from server.models import Task


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits: 138****5678."""
    digits = phone.replace(" ", "").replace("-", "")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(name: str) -> str:
    """Keep the first character only: 张** / J***."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def surname(name: str) -> str:
    """What a customer-facing page shows of the recipient: their surname (server.names, the rule search uses)."""
    return names.surname(name)


def surname_masked(name: str) -> str:
    """A person as a receipt shows them: the surname and stars (王**, ** Smith), never the full name."""
    shown = surname(name)
    if not shown:
        return "**"
    return f"{shown}**" if names.is_chinese(shown) else f"** {shown}"


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
