"""QR images (PNG or SVG) of a payload: enrollment codes and customer links share this."""
import io

import qrcode
import qrcode.image.pure
import qrcode.image.svg

QR_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


def qr_image(payload: str, fmt: str) -> tuple[bytes, str]:
    """The QR code of payload as (bytes, mimetype); fmt is "png" or "svg"."""
    buffer = io.BytesIO()
    factory = qrcode.image.svg.SvgPathImage if fmt == "svg" else qrcode.image.pure.PyPNGImage
    qrcode.make(payload, image_factory=factory).save(buffer)
    return buffer.getvalue(), QR_FORMATS[fmt]


def qr_text(payload: str) -> str:
    """The QR code of payload drawn with block characters for a terminal (light modules as blocks: for a dark
    background, the way most terminals are), quiet zone included."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue().replace("\xa0", " ").rstrip("\n")  # qrcode draws a dark module as a no-break space
