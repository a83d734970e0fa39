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
