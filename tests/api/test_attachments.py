"""Attachments cannot attack the staff who open them: SVG by allow-list only, served inert."""
import hashlib
import time

import pytest

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'
XLINK_NS = 'xmlns:xlink="http://www.w3.org/1999/xlink"'
# What a signature pad draws: strokes as paths and polylines, dots as circles.
SIGNATURE = f"""<?xml version="1.0" encoding="UTF-8"?>
<svg {SVG_NS} {XLINK_NS} version="1.1" viewBox="0 0 300 100" width="300" height="100">
  <title>Signature</title><desc>Signed on delivery</desc>
  <g fill="none" stroke="#000000" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round"
     transform="translate(2, 3) scale(0.98)">
    <path d="M10 50 C 20 10, 40 10, 50 50 S 80 90, 90 50"/>
    <polyline points="100,60 120,40 140,70 160,30"/>
    <line x1="170" y1="80" x2="260" y2="78" opacity="0.8"/>
  </g>
  <circle cx="280" cy="50" r="1.5" fill="rgb(0, 0, 0)"/>
</svg>""".encode()


def _put(client, headers, data: bytes):
    """Upload under the bytes' own hash."""
    return client.put(f"/api/v1/attachments/{hashlib.sha256(data).hexdigest()}", data=data, headers=headers)


UNSAFE = {
    "onload with a space before =": (f'<svg {SVG_NS} onload ="alert(1)"><path d="M0 0"/></svg>',
                                     "attribute onload"),
    "animate onbegin": (f'<svg {SVG_NS}><animate onbegin="alert(1)" attributeName="x" dur="1s"/></svg>',
                        "element animate"),
    "onmouseover": (f'<svg {SVG_NS}><path d="M0 0 L9 9" onmouseover="alert(1)"/></svg>',
                    "attribute onmouseover"),
    "xlink:href javascript&#58; on a link": (
        f'<svg {SVG_NS} {XLINK_NS}><a xlink:href="javascript&#58;alert(1)"><path d="M0 0"/></a></svg>',
        "element a"),
    "xlink:href javascript&#58; on a path": (
        f'<svg {SVG_NS} {XLINK_NS}><path d="M0 0" xlink:href="javascript&#58;alert(1)"/></svg>',
        "attribute href (namespace http://www.w3.org/1999/xlink)"),
    "set to java&#x73;cript:": (
        f'<svg {SVG_NS}><set attributeName="href" to="java&#x73;cript:alert(1)"/></svg>', "element set"),
    "XHTML iframe": (
        f'<svg {SVG_NS}><foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" '
        f'src="javascript:alert(1)"/></foreignObject></svg>', "namespace http://www.w3.org/1999/xhtml"),
    "XHTML iframe, prefixed": (
        f'<svg {SVG_NS} xmlns:h="http://www.w3.org/1999/xhtml"><h:iframe src="https://evil.example/"/></svg>',
        "namespace http://www.w3.org/1999/xhtml"),
    "DOCTYPE with an external entity": (
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "https://evil.example/x">]>'
        f'<svg {SVG_NS}><title>&xxe;</title></svg>', "DOCTYPE"),
    "url( hidden behind a reference and a space": (
        f'<svg {SVG_NS}><path d="M0 0" fill="u&#x72;l (https://evil.example/#x)"/></svg>', "'url('"),
    "javascript split by a newline": (f'<svg {SVG_NS}><path d="M0 0" fill="java&#10;script"/></svg>',
                                      "'javascript'"),
    "data: in a value": (f'<svg {SVG_NS}><path d="M0 0" fill="data:x"/></svg>', "'data:'"),
    "style attribute": (f'<svg {SVG_NS}><path d="M0 0" style="fill:red"/></svg>', "attribute style"),
    "style element": (f'<svg {SVG_NS}><style>path {{fill: red}}</style></svg>', "element style"),
    "script element": (f'<svg {SVG_NS}><script>alert(1)</script></svg>', "element script"),
    "use element": (f'<svg {SVG_NS}><use href="#a"/></svg>', "element use"),
    "xml-stylesheet instruction": (
        f'<?xml-stylesheet href="https://evil.example/x.css"?><svg {SVG_NS}><path d="M0 0"/></svg>',
        "xml-stylesheet"),
    "SVG outside the SVG namespace": ('<svg><path d="M0 0"/></svg>', "root element"),
    "HTML": ("<html><body><script>alert(1)</script></body></html>", "root element is html"),
    "not well-formed": (f'<svg {SVG_NS}><path d="M0 0">', "not well-formed"),
    "an encoding expat lacks": (f'<?xml version="1.0" encoding="UTF-7"?><svg {SVG_NS}/>', "not well-formed"),
}


@pytest.mark.parametrize("payload,reason", UNSAFE.values(), ids=UNSAFE.keys())
def test_unsafe_svg_is_refused_naming_why(client, handheld, payload, reason):
    """Every payload is refused (not stripped) with a stable code and the reason; nothing is stored."""
    data = payload.encode()
    response = _put(client, handheld, data)
    assert response.status_code == 422 and response.json["code"] == "unsafe_svg", response.json
    assert reason in response.json["fields"]["body"][0] and reason in response.json["detail"]
    sha = hashlib.sha256(data).hexdigest()
    assert client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code == 404


def test_entity_expansion_is_refused_before_it_expands(client, handheld, tmp_path):
    """A billion laughs answers at once; an external entity naming a local file never reads it."""
    levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    laughs = (f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY l0 "lol">{levels}]>'
              f'<svg {SVG_NS}><title>&l9;</title></svg>').encode()
    started = time.monotonic()
    response = _put(client, handheld, laughs)
    assert response.status_code == 422 and response.json["code"] == "unsafe_svg"
    assert "DOCTYPE" in response.json["detail"] and time.monotonic() - started < 5
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
           f'<svg {SVG_NS}><title>&xxe;</title></svg>').encode()
    response = _put(client, handheld, xxe)
    assert response.status_code == 422 and response.json["code"] == "unsafe_svg"
    assert b"TOP-SECRET-MARKER" not in response.data


def test_signature_svg_is_accepted_and_served_as_an_inert_download(client, handheld, make):
    """A drawing of paths and polylines is kept byte for byte and handed to staff as a sandboxed download."""
    sha = hashlib.sha256(SIGNATURE).hexdigest()
    assert _put(client, handheld, SIGNATURE).status_code == 201
    served = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("dispatcher"))
    assert served.status_code == 200 and served.data == SIGNATURE
    assert served.mimetype == "image/svg+xml"
    assert served.headers["Content-Disposition"] == f"attachment; filename={sha}.svg"
    assert served.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_photo_is_served_inline_but_sandboxed(client, handheld, make):
    """A PNG may open in the browser, still with nosniff and the sandbox policy; a retry is harmless."""
    sha = hashlib.sha256(PNG).hexdigest()
    assert _put(client, handheld, PNG).status_code == 201
    assert _put(client, handheld, PNG).status_code == 200
    served = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("quality"))
    assert served.status_code == 200 and served.data == PNG and served.mimetype == "image/png"
    assert served.headers["Content-Disposition"] == f"inline; filename={sha}.png"
    assert served.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_attachments_are_for_the_office_and_every_answer_is_nosniff(client, handheld, make):
    """A courier cannot read attachments back through the office route; errors are nosniff too."""
    sha = hashlib.sha256(PNG).hexdigest()
    _put(client, handheld, PNG)
    refused = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=handheld)
    assert refused.status_code == 403 and refused.headers["X-Content-Type-Options"] == "nosniff"
    missing = client.get(f"/api/v1/dispatch/attachments/{'0' * 64}", headers=make.headers("dispatcher"))
    assert missing.status_code == 404 and missing.json["code"] == "attachment_not_found"
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
