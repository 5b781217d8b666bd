"""WADO-RS answers split into their objects (pure): multipart/related with any boundary, or a bare body."""

import pytest

from serve.gateway.dicomweb.multipart import MultipartError, parts, single

TYPE = 'multipart/related; type="application/dicom"; boundary="{b}"'


def message(boundary: str, *payloads: bytes, end: bool = True) -> bytes:
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {len(p)}\r\n\r\n".encode()
        + p
        + b"\r\n"
        for p in payloads
    )
    return body + (f"--{boundary}--\r\n".encode() if end else b"")


def test_each_part_is_returned_whole_even_when_it_holds_crlf_and_dashes():
    payloads = [b"DICM\r\n--not-the-boundary\r\n\x00\xff" * 100, b"second"]
    assert parts(message("abc-123", *payloads), TYPE.format(b="abc-123")) == payloads
    assert single(message("b", payloads[0]), TYPE.format(b="b")) == payloads[0]


def test_a_bare_dicom_body_is_its_own_payload():
    assert single(b"DICM...", "application/dicom") == b"DICM..."


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (message("b", b"x", end=False)[:-3], TYPE.format(b="b")),  # cut inside the closing delimiter
        (b"no delimiter here", TYPE.format(b="b")),
        (message("b", b"x"), 'multipart/related; type="application/dicom"'),  # no boundary
    ],
)
def test_a_truncated_or_malformed_message_is_an_error(body, content_type):
    with pytest.raises(MultipartError):
        parts(body, content_type)


def test_one_instance_asked_for_is_one_part():
    with pytest.raises(MultipartError):
        single(message("b", b"1", b"2"), TYPE.format(b="b"))
