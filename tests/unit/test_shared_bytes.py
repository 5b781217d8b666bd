"""Bytes shared with the image workers: a large body reads as bytes do, a cut of it pickles as where it is (not
its bytes) and arrives in another process as the characters it spells, and what a worker writes is in place."""

import multiprocessing
import pickle
import re
import threading
import time
from typing import ClassVar

import orjson
import pytest

from serve.gateway.rewrite.inline_media import CutText, cut
from serve.imaging import shared_bytes
from serve.imaging.shared_bytes import SharedBytes, SharedText

pytestmark = pytest.mark.skipif(not shared_bytes.supported(), reason="needs memfd and /proc (Linux)")


def shared(data: bytes) -> SharedBytes:
    body = SharedBytes(len(data))
    body[:] = data
    return body


def test_a_shared_body_reads_as_bytes_do():
    raw = b'{"model": "m", "u": "data:image/png;base64,' + b"QUFB" * 300_000 + b'"}'
    body = shared(raw)
    assert len(body) == len(raw) and body[:9] == raw[:9] and body.find(b'"u"') == raw.find(b'"u"')
    assert re.compile(rb"data:image/png").search(body) is not None
    doc, media = cut(body)
    assert media is not None and orjson.loads(doc)["model"] == "m"
    assert orjson.loads(memoryview(body)) == orjson.loads(raw)


def in_child(obj: object) -> bytes:
    return bytes(pickle.loads(obj))  # type: ignore[arg-type]


def test_a_cut_of_a_shared_body_crosses_to_a_worker_as_a_reference():
    text = b"A" * 2_000_000
    body = shared(b'"' + text + b'"')
    piece = CutText(body, 1, 1 + len(text)).part(10, 1_000_010)
    sent = pickle.dumps(piece)
    assert len(sent) < 200  # the place, never the million characters
    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        assert pool.apply(in_child, (sent,)) == text[10:1_000_010]


def write_in_child(ref: shared_bytes.Ref) -> None:
    shared_bytes.write(ref, 3, b"ab", b"cd")


def test_a_worker_writes_in_place_and_a_closed_file_can_no_longer_be_opened():
    out = SharedBytes(8)
    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        pool.apply(write_in_child, (out.ref,))
    assert out[:] == b"\x00\x00\x00abcd\x00"
    view = memoryview(out)[3:7]
    ref = out.ref
    out.close_file()
    assert bytes(view) == b"abcd"  # what the gateway holds stays readable
    with pytest.raises(OSError):
        shared_bytes.read_text(ref, 0, 1)


def test_a_late_worker_never_reaches_the_file_that_took_an_ended_requests_number():
    ended = SharedBytes(16)
    old = ended.ref
    ended.close_file()
    other = SharedBytes(16)  # the lowest free descriptor: the number the ended request's file had
    assert other.ref.path == old.path  # the race this guards against, made certain
    for late in (lambda: shared_bytes.write(old, 0, b"leak"), lambda: shared_bytes.read_text(old, 0, 4)):
        with pytest.raises(OSError, match="gone"):
            late()
    assert other[:4] == b"\x00" * 4


def test_reading_past_the_end_is_an_error_not_short_data():
    body = shared(b"0123456789")
    assert bytes(pickle.loads(pickle.dumps(SharedText(body, 2, 6)))) == b"2345"
    with pytest.raises(OSError):
        shared_bytes.read_text(body.ref, 5, 11)


class Traced(SharedBytes):
    """Records the thread its mapping goes in."""

    gone_in: ClassVar[list[str]] = []

    def __del__(self) -> None:
        Traced.gone_in.append(threading.current_thread().name)
        super().__del__()


def test_a_mapping_goes_in_the_unmapper_thread_once_no_one_else_holds_it():
    Traced.gone_in.clear()
    body = Traced(1 << 20)
    body[:4] = b"abcd"
    shared_bytes.unmap_off_loop(body)
    view = memoryview(body)[:4]
    del body
    time.sleep(5 * shared_bytes.UNMAP_POLL_S)
    assert bytes(view) == b"abcd" and Traced.gone_in == []  # still held here: it stays mapped
    del view
    deadline = time.monotonic() + 30
    while not Traced.gone_in and time.monotonic() < deadline:
        time.sleep(shared_bytes.UNMAP_POLL_S)
    assert Traced.gone_in == ["shared-bytes-unmap"]
