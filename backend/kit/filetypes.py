"""What an uploaded file is, decided from its bytes.

A file's name and the Content-Type its client declared are whatever the client says; a phone's
gallery names a screenshot "身份证.pdf" as easily as a script does. The bytes decide: a file is kept
only when its own structure says it is one of the allowed types, and when the client declared a type
it must be the same one, so a PNG sent as a PDF is refused rather than stored under the wrong type.
"""
from __future__ import annotations

from backend.kit.errors import AppError

__all__ = ["sniff_content_type", "check_upload", "PDF", "JPEG", "PNG"]

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"

_PDF_TAIL = 1024   # PDF 1.7 (ISO 32000-1) 7.5.5: %%EOF ends the file; readers look for it in the last KiB
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"   # a zero-length IEND chunk and its CRC, the same in every PNG

# spellings clients send for the same type; octet-stream and an empty type say nothing at all
# (WeChat's wx.uploadFile and some Android pickers send them for any file)
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF, "image/x-png": PNG}
_UNDECLARED = {"", "application/octet-stream"}


def sniff_content_type(data: bytes) -> str | None:
    """PDF, JPEG or PNG when the bytes have that format's start and end; None for anything else.

    Both ends are checked so that a truncated upload (a weak mobile connection cut mid-file) is not
    kept as a material nobody can open later."""
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-_PDF_TAIL:]:
        return PDF
    # JPEG: SOI, then the first marker's FF; EOI at the end, after which some cameras pad with zeros
    if data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\x00").endswith(b"\xff\xd9") and len(data) > 4:
        return JPEG
    # PNG: the signature, IHDR as the first chunk (length 13), IEND as the last
    if data.startswith(_PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR") and data.endswith(_PNG_IEND):
        return PNG
    return None


def _declared_type(declared: str | None) -> str:
    media_type = (declared or "").split(";")[0].strip().lower()
    return _ALIASES.get(media_type, media_type)


def check_upload(data: bytes, *, declared: str | None, allowed: list[str], max_bytes: int) -> str:
    """The type of an uploaded file, sniffed from its bytes, or an AppError the client can act on:
    upload_empty, upload_too_large (413), upload_type_not_allowed (415) or upload_type_mismatch."""
    if not data:
        raise AppError("upload_empty", 422)
    if len(data) > max_bytes:
        raise AppError("upload_too_large", 413, limit=max_bytes)
    allowed_text = ", ".join(allowed)
    declared_type = _declared_type(declared)
    if declared_type not in _UNDECLARED and declared_type not in allowed:
        raise AppError("upload_type_not_allowed", 415, allowed=allowed_text)
    sniffed = sniff_content_type(data)
    if sniffed is None or (declared_type not in _UNDECLARED and sniffed != declared_type):
        # refused, not stored as the type the bytes have: whoever declared "PDF" for a PNG either
        # picked the wrong file or is testing what we do with a file that is not what it says
        raise AppError("upload_type_mismatch", 422, allowed=allowed_text)
    if sniffed not in allowed:
        raise AppError("upload_type_not_allowed", 415, allowed=allowed_text)
    return sniffed
