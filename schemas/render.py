"""A schema's dump as one plain function: the same JSON, built without marshmallow's per-field machinery.

A push dumps every task it touched (with its parcels, fees, notes, appointment
history) and marshmallow spends about six calls per field getting and
formatting each value. `renderer(schema)` reads the schema's own fields once
and returns a function that does, per field, what that field's serialize does:
the schema stays the one contract (tests/sync/test_render.py holds the two
equal), this only walks it faster. A field of a kind not known here, a custom
_serialize, a dotted attribute or a schema with dump hooks (or its own dump,
_serialize or get_attribute) is left to marshmallow itself, so an unknown case
is slower, never different.
"""
import functools
from collections.abc import Callable

from marshmallow import Schema, fields, missing, utils

# Types whose obj[name] raises for every name (which marshmallow catches, then reads the attribute).
_BY_ATTRIBUTE: set[type] = set()


def read_by_attribute(kind: type) -> None:
    """Declare a type that refuses every name as an index (a query's Row): its fields are read as attributes at once.

    The same value as marshmallow's, without the raised and caught exception per field. Declared by the server
    (the wire contract imports no database code).
    """
    _BY_ATTRIBUTE.add(kind)


def _get(obj, key: str):
    """marshmallow.utils.get_value for a plain key: obj[key] where that works, else the attribute."""
    if type(obj) in _BY_ATTRIBUTE or not hasattr(obj, "__getitem__"):
        return getattr(obj, key, missing)
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, key, missing)


def _text(value):
    """fields.String's serialize."""
    return value if value is None or type(value) is str else utils.ensure_text_type(value)


def _same(value):
    """A field that serializes the value as it is (fields.Boolean, fields.Raw)."""
    return value


def _converter(field: fields.Field) -> Callable | None:
    """value -> what field._serialize returns for it, or None when only marshmallow knows."""
    kind = type(field)
    if kind._serialize is fields.String._serialize:
        return _text
    if kind._serialize is fields.Number._serialize and kind._format_num is fields.Number._format_num:
        if field.as_string:
            return None
        num = field.num_type
        return lambda value: None if value is None else num(value)
    if kind._serialize is fields.Field._serialize:
        return _same
    if kind._serialize is fields.DateTime._serialize:
        format_ = field.SERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
        if format_ is None:
            return None
        return lambda value: None if value is None else format_(value)
    if kind._serialize is fields.Nested._serialize:
        schema = field.schema
        many = bool(schema.many or field.many)
        if many and not _plain(schema):  # a hook may take the whole list (pass_collection): only dump() knows
            return lambda value: None if value is None else schema.dump(value, many=True)
        render = renderer(schema)
        if many:
            return lambda value: None if value is None else [render(each) for each in value]
        return lambda value: None if value is None else render(value)
    if kind._serialize is fields.List._serialize:
        inner = _converter(field.inner)
        if inner is None or isinstance(field.inner, (fields.Function, fields.Constant)):
            return None
        return lambda value: None if value is None else [inner(each) for each in value]
    if kind._serialize is fields.Dict._serialize and field.key_field is None and field.value_field is None:
        mapping = field.mapping_type
        return lambda value: None if value is None else mapping(value)
    return None


def _value_of(name: str, field: fields.Field, schema: Schema) -> Callable:
    """obj -> the field's serialized value (or missing, which leaves the key out)."""
    kind = type(field)
    own = kind.serialize is fields.Field.serialize  # a field that overrides serialize is left to it
    if own and kind._serialize is fields.Function._serialize and not kind._CHECK_ATTRIBUTE:
        return field.serialize_func
    if own and kind._serialize is fields.Constant._serialize and not kind._CHECK_ATTRIBUTE:
        constant = field.constant
        return lambda _obj: constant
    key = field.attribute or name
    convert = _converter(field)
    plain = (convert is not None and kind.serialize is fields.Field.serialize
             and kind.get_value is fields.Field.get_value and "." not in key and field.dump_default is missing)
    if not plain:
        return lambda obj: field.serialize(name, obj, accessor=schema.get_attribute)

    def value_of(obj):
        value = _get(obj, key)
        return missing if value is missing else convert(value)
    return value_of


def _has_dump_hooks(schema: Schema) -> bool:
    """Whether the schema runs pre_dump or post_dump hooks (then only its own dump will do)."""
    return any(hooks for tag, hooks in schema._hooks.items() if "dump" in str(tag))


def _plain(schema: Schema) -> bool:
    """Whether the schema dumps as marshmallow's Schema does, field by field: no dump hooks, and none of the
    methods a dump goes through overridden (else only its own dump will do)."""
    kind = type(schema)
    return not _has_dump_hooks(schema) and all(
        getattr(kind, name) is getattr(Schema, name) for name in ("dump", "_serialize", "get_attribute"))


@functools.cache
def _renderer_of(schema: Schema) -> Callable[[object], dict]:
    """renderer(), cached per schema instance."""
    if not _plain(schema):
        return lambda obj: schema.dump(obj, many=False)
    plan = [(field.data_key if field.data_key is not None else name, _value_of(name, field, schema))
            for name, field in schema.dump_fields.items()]

    def render(obj) -> dict:
        out = {}
        for key, value_of in plan:
            value = value_of(obj)
            if value is not missing:
                out[key] = value
        return out
    return render


def renderer(schema: Schema) -> Callable[[object], dict]:
    """obj -> schema.dump(obj) for one object (schema.many aside), as a plain function built once per schema."""
    return _renderer_of(schema)
