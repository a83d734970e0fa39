"""The handheld sync protocol on the wire (docs/protocol.md)."""
from marshmallow import INCLUDE, ValidationError, fields, validate, validates_schema

from schemas.common import ANY_DATE_TIME_PATTERN, NewestFirstQuery, PageOut, Schema, integer, text
from schemas.limits import MAX_INT64
from schemas.vocab import CONFLICT_RESOLUTIONS, CONFLICT_STATUSES, OP_LOG_STATUSES, OP_STATUSES


class OpIn(Schema):
    """One op from the device's queue, checked op by op: a failing op is rejected, never the batch."""

    # The engine escapes what cannot be stored and answers invalid_op / invalid_payload itself.
    refuse_unsafe_values = False
    op_id = text(64)
    seq = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_INT64))
    type = text(64)
    entity_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    base_version = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=MAX_INT64))
    # Parsed and range-checked by the engine, which answers invalid_device_time.
    device_time = fields.Raw(required=True)
    # Checked by the op type's own schema, which answers invalid_payload.
    payload = fields.Raw(load_default=dict)


class OpSeqIn(Schema):
    """What the batch needs of each op to sequence it; the rest is OpIn's, op by op."""

    class Meta:
        unknown = INCLUDE

    refuse_unsafe_values = False  # the rest of the op is OpIn's, op by op
    seq = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_INT64))


class PushIn(Schema):
    """A batch of ops; at most PUSH_MAX_OPS, seqs unique within the batch."""

    refuse_unsafe_values = False  # each op's values are decided op by op (OpIn)
    device_id = text(32)
    ops = fields.List(fields.Nested(OpSeqIn), required=True, validate=validate.Length(max=500),
                      metadata={"description": "Each seq once"})
    # Any time with its offset: a clock outside the range of times (reset to 1970, say) is what the skew is
    # measured for; refusing it would refuse the batch, and the ops the device made under a good clock with it.
    device_now = fields.AwareDateTime(load_default=None, metadata={
        "pattern": ANY_DATE_TIME_PATTERN,
        "description": "The device's clock as it sends the batch: the server measures the clock's skew from it "
                       "(any time; one far off is flagged clock_suspect like any other)"})
    # With device_now within the tolerance, the device's trusted sync: no op it numbers after this seq happened
    # before the batch arrived (docs/protocol.md, "What time an op happened").
    last_seq = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=MAX_INT64),
                              metadata={"description": "The highest seq this device has assigned when it sent this "
                                                       "batch (queued ops not in the batch included)"})

    @validates_schema
    def _unique_seqs(self, data, **_kw):
        """One batch cannot carry two ops for one seq."""
        seqs = [op["seq"] for op in data.get("ops", [])]
        if len(seqs) != len(set(seqs)):
            raise ValidationError("Each seq may appear once in a batch.", field_name="ops")


class OpResultOut(Schema):
    """What became of one op."""

    seq = fields.Integer()
    op_id = fields.String()
    status = fields.String(metadata={"enum": list(OP_STATUSES)})
    code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)
    entity = fields.Dict(allow_none=True)
    duplicate = fields.Boolean()
    archived = fields.Boolean(metadata={"description": "A duplicate answered after the sync retention: "
                                                       "the stored result without its entity"})
    clock_suspect = fields.Boolean(metadata={"description": "Present (true) when the op's time cannot be trusted: "
                                                            "applied at the time the server decided, for review"})
    # Last: from here on the name is this field, not marshmallow's module.
    fields = fields.Dict(metadata={"description": "Failing fields by path (invalid_op, invalid_payload)"})


class PushOut(Schema):
    """Results in seq order; stopped_at/retry_after after a transient stop; expected_seq after a gap."""

    results = fields.List(fields.Nested(OpResultOut))
    last_seq = fields.Integer()
    server_time = fields.AwareDateTime()
    expected_seq = fields.Integer()
    stopped_at = fields.Integer()
    retry_after = fields.Integer()
    stop_code = fields.String()
    stop_detail = fields.String()
    clock_skew_s = fields.Integer(metadata={"description": "device_now minus the server's time, in seconds"})
    clock_suspect = fields.Boolean(metadata={"description": "The skew is beyond the server's tolerance (each op "
                                                            "of the batch is then clock_suspect)"})


class PullQuery(Schema):
    """Where to continue from, and how many changes at most."""

    cursor = text(500, required=False, load_default=None)
    limit = integer(minimum=1, maximum=5000, strict=False, load_default=500)


class ScopeOut(Schema):
    """The drift check over the device's whole scope."""

    count = fields.Integer()
    checksum = fields.String()


class ChangeOut(Schema):
    """An entity at its latest version, or its tombstone."""

    entity = fields.String()
    id = fields.String()
    version = fields.Integer(allow_none=True)
    deleted = fields.Boolean()
    data = fields.Dict()


class CompanyOut(Schema):
    """The company the courier works for, as the device says it to customers."""

    name = fields.String(allow_none=True, metadata={"description": "FIELDOPS_COMPANY_NAME; null when unset"})


class PullOut(Schema):
    """A page of changes."""

    changes = fields.List(fields.Nested(ChangeOut))
    cursor = fields.String(allow_none=True)
    has_more = fields.Boolean()
    last_seq = fields.Integer()
    reset = fields.Boolean()
    scope = fields.Nested(ScopeOut)
    timezone = fields.String(metadata={"description": "the depot's time zone (IANA name, FIELDOPS_TIMEZONE): "
                                                      "what a day is, and how times are shown"})
    company = fields.Nested(CompanyOut)


class OpLogOut(Schema):
    """An op as the log keeps it."""

    id = fields.Integer()
    device_id = fields.String()
    courier_id = fields.String()
    seq = fields.Integer()
    op_id = fields.String()
    type = fields.String()
    entity_id = fields.String(allow_none=True)
    base_version = fields.Integer(allow_none=True)
    payload = fields.Dict(metadata={"description": "As received; a rejected op's payload over 4 KiB is kept "
                                                   "as {truncated, bytes, sha256, prefix, attachments}"})
    status = fields.String(metadata={"enum": list(OP_LOG_STATUSES)})
    code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)
    device_time = fields.AwareDateTime(allow_none=True, metadata={"description": "As the device sent it"})
    device_utc_offset_min = fields.Integer(allow_none=True)
    effective_time = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the op happened, as the server decided: what its rules and the ledger went by"})
    received_at = fields.AwareDateTime()
    in_sequence = fields.Boolean()
    clock_skew_s = fields.Integer(allow_none=True)
    clock_suspect = fields.Boolean()


class OpLogQuery(NewestFirstQuery):
    """Filters for the op log."""

    device_id = text(32, required=False, load_default=None)
    courier_id = text(32, required=False, load_default=None)
    status = text(16, required=False, load_default=None,
                  validate=validate.OneOf(OP_LOG_STATUSES))
    type = text(64, required=False, load_default=None)
    entity_id = text(64, required=False, load_default=None)


class OpLogPage(PageOut):
    """A page of the op log."""

    items = fields.List(fields.Nested(OpLogOut))


class ConflictOut(Schema):
    """A conflict for dispatch to review."""

    id = fields.Integer()
    op_log_id = fields.Integer()
    task_id = fields.String()
    courier_id = fields.String()
    applied = fields.Boolean()
    reason = fields.String()
    status = fields.String()
    resolution = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class ConflictQuery(NewestFirstQuery):
    """Filters for conflicts."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(CONFLICT_STATUSES))
    task_id = text(32, required=False, load_default=None)


class ConflictPage(PageOut):
    """A page of conflicts."""

    items = fields.List(fields.Nested(ConflictOut))


class ResolveIn(Schema):
    """How dispatch settled a conflict."""

    resolution = text(32, validate=validate.OneOf(CONFLICT_RESOLUTIONS))
    note = text(2000, required=False, min_len=0, multiline=True, load_default=None)
