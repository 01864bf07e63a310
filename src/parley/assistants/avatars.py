"""Uploaded avatar images: small raster images only, recognised by their bytes.

An avatar is shown to people in an ``<img>``, so what may be stored is decided by
the content, never by a name or a declared type: PNG, JPEG, GIF and WebP by their
magic bytes, at most ``AVATAR_MAX_BYTES``. SVG (scriptable) and anything else are
refused. Served with ``nosniff`` and a ``sandbox`` CSP by the router.
"""

from __future__ import annotations

import hashlib

from parley.errors import Invalid, TooLarge, UnsupportedContent

__all__ = ["AVATAR_MAX_BYTES", "checked_image"]

AVATAR_MAX_BYTES = 256 * 1024


def _media_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def checked_image(data: bytes) -> tuple[str, str]:
    """``(media type, sha256)`` of an acceptable avatar; else ``Invalid`` (empty),
    ``TooLarge`` or ``UnsupportedContent``."""
    if not data:
        raise Invalid("The image is empty.", "empty_file")
    if len(data) > AVATAR_MAX_BYTES:
        raise TooLarge(
            f"An avatar image may be at most {AVATAR_MAX_BYTES // 1024} KB; use a smaller one.",
            "file_too_large",
        )
    media_type = _media_type(data)
    if media_type is None:
        raise UnsupportedContent(
            "An avatar must be a PNG, JPEG, GIF or WebP image (SVG is not accepted).",
            "unsupported_type",
        )
    return media_type, hashlib.sha256(data).hexdigest()
