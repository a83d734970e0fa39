"""A grade's reasons in words: plain Python, so the reference handheld (which needs no venv) says them as the
office reads them."""


def why(reasons: list[dict], score: int | None = None) -> str:
    """A history row's reasons as one line a person reads: what staff did first, then what the rules counted
    (under an override, marked as the rules' alone: their grade and score, which the override set aside)."""
    words = []
    for r in reasons:
        code = r.get("code")
        if code == "override":
            rules = ", ".join(str(part) for part in (r.get("rules_grade"), score) if part is not None)
            words.append(f"override to {r.get('grade')} by {r.get('by')} until {r.get('until')}: {r.get('reason')}"
                         f" — rules alone: {rules or 'not recorded'}")
        elif code == "override_lifted":
            words.append(f"override to {r.get('grade')} lifted by {r.get('by')}: {r.get('reason')}")
        elif code == "override_ended":
            words.append(f"override to {r.get('grade')} ended at {r.get('until')}")
        elif code == "violation_voided":
            source = f"appeal {r['appeal_id']}" if r.get("appeal_id") else (
                f"review of window {r['window_id']}" if r.get("window_id") else "quality")
            words.append(f"violation {r.get('violation_id')} ({r.get('violation_code')}) voided by "
                         f"{r.get('by') or 'a rule'} ({source}): {r.get('reason')}")
        elif code == "violations":
            words.append(f"{r.get('count')} x {r.get('violation_code')} ({r.get('severity')}): -{r.get('points')}")
        elif code == "on_time_rate" and r.get("counted"):
            words.append(f"on-time {r.get('rate_percent')}% of target {r.get('target_percent')}%: -{r.get('points')}")
        elif code == "low_ratings":
            words.append(f"{r.get('low')} low ratings: -{r.get('points')}")
        elif code == "critical_violation":
            words.append("a critical violation keeps the grade below A")
    return "; ".join(words)
