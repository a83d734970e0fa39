"""Bounds every input shares: the range of times and integers the service accepts."""
from datetime import datetime, timezone

# Times outside this range are typos or clock faults; inside it every local date
# in any zone (UTC-12 to UTC+14) is representable, so no date arithmetic overflows.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=timezone.utc)
# Integers the databases store (BIGINT): anything larger is refused, never a 500.
MAX_INT64 = 2**63 - 1
# Integer id columns (tokens, conflicts, ...) are INTEGER: route ids beyond this match nothing.
MAX_INT32 = 2**31 - 1
# The most one amount may be, in fen (1,000,000 yuan): a COD amount, a fee, a payment, a remittance, a
# correction. A task's amount due (COD plus its fees) is one payment, so it is bounded by the same figure.
MAX_MONEY = 100_000_000
