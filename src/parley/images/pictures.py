"""Checking image bytes before Parley keeps or forwards them.

Every image that enters (an upload to edit, a provider's answer, a ZIP import)
passes ``inspect``: the magic bytes must name PNG, JPEG, WebP or GIF; the
declared dimensions are read from the header and refused past
``max_pixels`` *before* any pixel is decoded (a 100,000 x 100,000 PNG of a few
hundred bytes is a decompression bomb, and Pillow's own
``DecompressionBombError`` is caught too); then the whole image is decoded
once, so a truncated or corrupt file is refused here rather than in a browser
or a provider. Refusals are ``parley.errors`` with codes the API documents.
Decoding costs CPU: callers run ``inspect`` in a thread.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from parley.errors import Invalid, TooLarge, UnsupportedContent

__all__ = ["MEDIA_TYPES", "Picture", "inspect", "parse_size", "sniff"]

# Pillow's format name -> the media type Parley serves it as.
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


@dataclass(frozen=True, slots=True)
class Picture:
    media_type: str
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The media type the leading bytes name (None: not an image Parley takes)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def inspect(data: bytes, *, max_bytes: int, max_pixels: int) -> Picture:
    """The image's type and size, or a refusal (see the module docstring)."""
    if not data:
        raise Invalid("The image is empty.", code="empty_image")
    if len(data) > max_bytes:
        raise TooLarge(
            f"The image is {len(data) / 1e6:.1f} MB; at most {max_bytes / 1e6:.1f} MB "
            "are accepted.",
            code="image_too_large",
        )
    media_type = sniff(data)
    if media_type is None:
        raise UnsupportedContent(
            "That is not a PNG, JPEG, WebP or GIF image.", code="unsupported_image"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if MEDIA_TYPES.get(image.format or "") != media_type:
                    raise UnsupportedContent(
                        "The image's content does not match its type.", code="content_mismatch"
                    )
                width, height = image.size
                frames = max(1, int(getattr(image, "n_frames", 1)))
                if width * height * frames > max_pixels:
                    raise _too_many_pixels(width, height, frames, max_pixels)
                for frame in range(frames):
                    image.seek(frame)
                    image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(0, 0, 1, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Invalid(
            "The image is truncated or corrupt and cannot be read.", code="corrupt_image"
        ) from exc
    return Picture(media_type, width, height)


def _too_many_pixels(width: int, height: int, frames: int, limit: int) -> TooLarge:
    what = f"{width} x {height} pixels" + (f" x {frames} frames" if frames > 1 else "")
    if not width:
        what = "more pixels than Pillow will decode"
    return TooLarge(
        f"The image has {what}; at most {limit:,} pixels are accepted.",
        code="too_many_pixels",
    )


def parse_size(size: str, *, largest: int = 4096) -> tuple[int, int]:
    """``"1024x768"`` -> (1024, 768); ``Invalid`` for anything else or past ``largest``."""
    match = _SIZE.match(size.strip().lower())
    if match is None:
        raise Invalid(
            f"The size {size[:40]!r} is not WIDTHxHEIGHT (e.g. 1024x1024).", code="bad_size"
        )
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= largest and 16 <= height <= largest):
        raise Invalid(
            f"The size {width}x{height} is outside 16..{largest} pixels a side.", code="bad_size"
        )
    return width, height
