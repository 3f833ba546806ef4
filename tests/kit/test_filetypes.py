import io

import pytest
import qrcode
import qrcode.image.pure

from backend.kit.errors import AppError
from backend.kit.filetypes import JPEG, PDF, PNG, check_upload, sniff_content_type

ALLOWED = [PDF, JPEG, PNG]
MAX = 1024 * 1024


def _png() -> bytes:
    """A real PNG, as the qrcode library writes it (pure Python PNG writer)."""
    out = io.BytesIO()
    qrcode.make("https://ehall.ulanqab.gov.cn/c/150900", image_factory=qrcode.image.pure.PyPNGImage).save(out)
    return out.getvalue()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


# An 8x8 grey baseline JPEG: quantisation table of ones, one-code Huffman tables (DC category 0, AC
# end-of-block), one block. Pillow 13 decodes it as an 8x8 "L" image of value 128.
JPEG_8X8 = (b"\xff\xd8"
            + _segment(0xDB, b"\x00" + b"\x01" * 64)
            + _segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
            + _segment(0xC4, b"\x00\x01" + b"\x00" * 15 + b"\x00")
            + _segment(0xC4, b"\x10\x01" + b"\x00" * 15 + b"\x00")
            + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + b"\x3f"
            + b"\xff\xd9")


def _pdf() -> bytes:
    """A one-page PDF 1.4 with a correct cross-reference table (byte offsets computed, not guessed)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _error(data: bytes, *, declared: str | None = None, allowed: list[str] = ALLOWED, max_bytes: int = MAX) -> AppError:
    with pytest.raises(AppError) as raised:
        check_upload(data, declared=declared, allowed=allowed, max_bytes=max_bytes)
    return raised.value


class TestSniffContentType:
    def test_real_files_of_each_type_are_recognised(self):
        assert sniff_content_type(_pdf()) == PDF
        assert sniff_content_type(JPEG_8X8) == JPEG
        assert sniff_content_type(_png()) == PNG

    def test_zero_padding_after_a_jpegs_end_marker_is_allowed(self):
        assert sniff_content_type(JPEG_8X8 + b"\x00" * 300) == JPEG

    def test_a_pdf_with_a_trailing_newline_block_after_eof_is_still_a_pdf(self):
        assert sniff_content_type(_pdf() + b"\r\n" * 100) == PDF

    @pytest.mark.parametrize("cut", [10, 100])
    def test_a_file_cut_short_is_no_known_type(self, cut):
        # a weak connection dropped mid-upload: the start is right, the end is missing
        assert sniff_content_type(_png()[:-cut]) is None
        assert sniff_content_type(JPEG_8X8[:-cut]) is None
        assert sniff_content_type(_pdf()[:-cut]) is None

    def test_a_pdf_whose_eof_marker_is_not_in_its_last_kib_is_not_a_pdf(self):
        assert sniff_content_type(_pdf() + b" " * 2048) is None

    @pytest.mark.parametrize("data", [
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"PK\x03\x04" + b"\x00" * 26,                 # a .docx or any zip
        "身份证号码 150921199001011233\n".encode(),
        b"\xff\xd8\xff\xd9",                          # start and end markers overlapping, nothing between
        b"\x89PNG\r\n\x1a\n",                          # a signature with no chunks
        b"",
    ])
    def test_other_bytes_are_no_known_type(self, data):
        assert sniff_content_type(data) is None


class TestCheckUpload:
    @pytest.mark.parametrize("declared", [None, "", "application/octet-stream"])
    def test_an_undeclared_type_is_taken_from_the_bytes(self, declared):
        assert check_upload(_png(), declared=declared, allowed=ALLOWED, max_bytes=MAX) == PNG

    @pytest.mark.parametrize("declared", ["image/jpeg", "IMAGE/JPEG", "image/jpg", "image/jpeg; charset=binary"])
    def test_spellings_of_the_declared_type_that_mean_the_same(self, declared):
        assert check_upload(JPEG_8X8, declared=declared, allowed=ALLOWED, max_bytes=MAX) == JPEG

    def test_a_png_declared_as_a_pdf_is_a_mismatch(self):
        error = _error(_png(), declared=PDF)
        assert (error.code, error.status) == ("upload_type_mismatch", 422)

    def test_a_text_file_declared_as_a_pdf_is_a_mismatch(self):
        error = _error("申请材料清单\n1. 身份证\n".encode(), declared=PDF)
        assert (error.code, error.status) == ("upload_type_mismatch", 422)

    def test_bytes_of_no_known_type_with_no_declared_type_are_a_mismatch(self):
        assert _error(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").code == "upload_type_mismatch"

    def test_an_empty_file(self):
        error = _error(b"", declared=PDF)
        assert (error.code, error.status) == ("upload_empty", 422)

    def test_one_byte_over_the_limit_is_too_large_and_the_limit_is_named(self):
        pdf = _pdf()
        assert check_upload(pdf, declared=PDF, allowed=ALLOWED, max_bytes=len(pdf)) == PDF
        error = _error(pdf, declared=PDF, max_bytes=len(pdf) - 1)
        assert (error.code, error.status, error.params) == ("upload_too_large", 413, {"limit": len(pdf) - 1})

    def test_a_declared_type_outside_the_allowed_list_is_refused_before_the_bytes_are_read(self):
        error = _error(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", declared="image/gif")
        assert (error.code, error.status) == ("upload_type_not_allowed", 415)
        assert error.params == {"allowed": "application/pdf, image/jpeg, image/png"}

    def test_a_real_file_of_a_type_this_upload_does_not_take_is_not_allowed(self):
        # a PDF-only material slot given a photo, with or without a declared type
        for declared in (None, PNG):
            error = _error(_png(), declared=declared, allowed=[PDF])
            assert (error.code, error.status) == ("upload_type_not_allowed", 415)
