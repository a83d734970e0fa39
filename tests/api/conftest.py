"""What the API tests share beyond tests/conftest.py."""
import pytest
from schemathesis.core.jsonschema import patterns


@pytest.fixture
def astral_patterns(monkeypatch):
    """Schemathesis as the spec needs it: characters beyond the BMP kept as themselves in the patterns it rewrites.

    Schemathesis 4.32 folds a field's length into its pattern and writes the pattern out again, a
    non-printable character beyond the BMP (the tag characters a Text refuses) as \\U0000XXXX, which
    its own ECMA-262 check then refuses: no case is drawn for the operation. Read by code point (as
    the spec's patterns are), the character itself is the same pattern.
    """
    for name in ("_serialize_literal", "_serialize_literal_in_class"):
        written = getattr(patterns, name)
        monkeypatch.setattr(patterns, name, lambda code, written=written: chr(code) if code > 0xFFFF else written(code))


@pytest.fixture
def handheld(make) -> dict:
    """A courier's enrolled device's headers (the attachment tests' uploader)."""
    enrolled = make.device(make.courier())
    return {"Authorization": f"Bearer {enrolled['token']}", "Fieldops-Protocol": "1"}
