"""Compressed frame headers read from hand-built bytes: what each decoder would allocate for."""

import struct

import pytest

from serve.imaging.codestream import FrameShape, check_rle, j2k_shape, jpeg_shape


def jpeg(marker: int, width: int, height: int, components: int = 1, prefix: bytes = b"") -> bytes:
    sof = struct.pack(">BBHBHHB", 0xFF, marker, 8 + 3 * components, 8, height, width, components)
    return b"\xff\xd8" + prefix + sof + b"\x01\x11\x00" * components + b"\xff\xda\x00\x08"


def j2k(width: int, height: int, components: int = 1, x0: int = 0, y0: int = 0) -> bytes:
    siz = struct.pack(
        ">HHIIIIIIIIH", 38 + 3 * components, 0, width + x0, height + y0, x0, y0, 64, 64, 0, 0, components
    )
    return b"\xff\x4f\xff\x51" + siz + b"\x0f\x01\x01" * components + b"\xff\x52"


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


@pytest.mark.parametrize(
    "marker", [0xC0, 0xC1, 0xC2, 0xC3, 0xF7]
)  # baseline, extended, progressive, lossless, LS
def test_jpeg_and_jpeg_ls_frame_headers_give_the_frame_size(marker):
    assert jpeg_shape(jpeg(marker, 20000, 300, 3)) == FrameShape(20000, 300, 3)


def test_jpeg_segments_and_fill_bytes_before_the_frame_header_are_skipped():
    app0 = b"\xff\xe0\x00\x10" + b"JFIF\x00" + bytes(9)
    dht = b"\xff\xc4\x00\x04\x00\x00"  # C4 is in the SOF range but is a Huffman table
    assert jpeg_shape(jpeg(0xC0, 64, 32, prefix=app0 + b"\xff" + dht)) == FrameShape(64, 32, 1)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00", b"\xff\xd8\xff\xda\x00\x08", b"\xff\xd8\xff\xc0\x00\x11\x08", b"\xff\xd8\x12\x34"],
)
def test_jpeg_without_a_readable_frame_header_is_an_error(data):
    with pytest.raises(ValueError):
        jpeg_shape(data)


def test_j2k_siz_gives_the_image_area_less_its_offset():
    assert j2k_shape(j2k(20000, 20000)) == FrameShape(20000, 20000, 1)
    assert j2k_shape(j2k(512, 256, 3, x0=100, y0=7)) == FrameShape(512, 256, 3)


def test_jp2_boxed_codestream_is_read_from_its_jp2c_box():
    signature = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
    data = (
        signature
        + box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ")
        + box(b"jp2h", bytes(30))
        + box(b"jp2c", j2k(40, 30))
    )
    assert j2k_shape(data) == FrameShape(40, 30, 1)


@pytest.mark.parametrize("data", [b"", b"\xff\x4f\xff\x51" + bytes(10), b"\xff\xd8\xff\xc0", j2k(0, 0)])
def test_j2k_without_a_readable_siz_is_an_error(data):
    with pytest.raises(ValueError):
        j2k_shape(data)


def rle(offsets: list[int], total: int) -> bytes:
    header = struct.pack("<16I", len(offsets), *offsets, *[0] * (15 - len(offsets)))
    return header + bytes(total - 64)


def test_rle_header_consistent_with_the_samples_passes():
    check_rle(rle([64, 100], 120), segments=2, rows=4, columns=4)  # 16-bit grey: two byte planes


@pytest.mark.parametrize(
    ("frame", "segments"),
    [
        (rle([64], 100), 2),  # one segment where 16-bit needs two
        (rle([64, 64], 100), 2),  # offsets not ascending
        (rle([80, 90], 100), 2),  # the first segment does not start after the header
        (rle([64, 200], 100), 2),  # a segment beyond the frame
        (rle([64, 100], 64 + 2 * 2 * 4 * 4 + 10), 2),  # more bytes than a 4x4 image could ever encode to
        (b"\x01\x00", 1),
    ],
)
def test_rle_header_inconsistent_with_the_image_is_an_error(frame, segments):
    with pytest.raises(ValueError):
        check_rle(frame, segments, rows=4, columns=4)
