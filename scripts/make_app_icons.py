"""Draw the courier app's icons (courier-app/public/icons/*.png): a parcel on the app's green, in plain shapes.

Run again only to change them (the PNGs are committed): `python scripts/make_app_icons.py`. Needs Pillow.
"any" icons fill the square with rounded corners; the maskable one is full-bleed, its drawing inside the
central 80 % a platform's mask may keep (https://web.dev/articles/maskable-icon).
"""
import os

from PIL import Image, ImageDraw

GREEN = (11, 61, 46)       # the app's theme colour (#0b3d2e)
PARCEL = (244, 196, 48)    # the box
TAPE = (11, 61, 46)
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "courier-app", "public", "icons")


def _parcel(draw: ImageDraw.ImageDraw, size: int, scale: float) -> None:
    """A box seen from the front with its tape, centred, `scale` of the icon wide."""
    width = size * scale
    left, top = (size - width) / 2, (size - width * 0.8) / 2
    right, bottom = left + width, top + width * 0.8
    draw.rounded_rectangle((left, top, right, bottom), radius=width * 0.06, fill=PARCEL)
    band = width * 0.14
    draw.rectangle(((size - band) / 2, top, (size + band) / 2, bottom), fill=TAPE)  # the tape over the lid
    draw.rectangle((left, top + width * 0.22, right, top + width * 0.22 + width * 0.05), fill=TAPE)  # the lid's edge


def icon(size: int, *, maskable: bool) -> Image.Image:
    """One icon of `size` pixels."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle((0, 0, size, size), fill=GREEN)
        _parcel(draw, size, 0.52)  # inside the safe circle (radius 40 %)
    else:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size * 0.18, fill=GREEN)
        _parcel(draw, size, 0.66)
    return image


def main() -> None:
    """Write icon-192.png, icon-512.png and icon-maskable-512.png."""
    os.makedirs(OUT, exist_ok=True)
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("icon-maskable-512.png", 512, True)):
        icon(size, maskable=maskable).save(os.path.join(OUT, name), optimize=True)
        print(os.path.join(OUT, name))


if __name__ == "__main__":
    main()
