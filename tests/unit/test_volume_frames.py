"""Frames of a multi-frame object found in its bytes, and cut from its data URL without decoding the rest: native
runs, one fragment per frame, several fragments by the offset table, and what cannot be split."""

import base64
import io
import random

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, RLELossless

from serve.config import ImageSettings
from serve.gateway.rewrite.volumes import base64_cut
from serve.imaging.errors import ImageRefused
from serve.imaging.frame_ranges import fragments_of
from serve.imaging.volume_headers import PREFIX_CHARS, read_headers
from serve.imaging.volume_slices import SliceTask, render
from testkit.ct_series import ct_series, enhanced

SETTINGS = ImageSettings(model_input_size=64)


def test_a_base64_cut_decodes_to_exactly_the_bytes_asked_for():
    data = random.Random(0).randbytes(5000)
    text = base64.b64encode(data).decode()
    url = "data:application/dicom;base64," + text
    for start, end in [(0, 1), (1, 2), (2, 5), (3, 3000), (4999, 5000), (1234, 4321), (0, 5000)]:
        cut, skip = base64_cut(text, start, end)
        assert base64.b64decode(cut)[skip : skip + end - start] == data[start:end]
        assert base64_cut(url, start, end, len(url) - len(text)) == (cut, skip)


def whole(obj: bytes):
    (header,) = read_headers([(0, base64.b64encode(obj).decode(), 0, True)], SETTINGS)
    return header


def prefix_header(obj: bytes):
    text = base64.b64encode(obj).decode()
    assert len(text) > PREFIX_CHARS
    (header,) = read_headers([(0, text[:PREFIX_CHARS], 0, False)], SETTINGS)
    return header


def test_a_single_frame_header_is_read_from_a_prefix_and_a_multi_frame_one_asks_for_the_whole():
    single = ct_series(1, 256).objects[0]
    header = prefix_header(single)
    assert header.slices[0].modality == "CT" and header.slices[0].intercept == -1024
    # Plain pixels: the layout says where they lie in the whole object, so phase 2 decodes those bytes alone.
    ((start, end),) = header.layout.ranges
    stored = dcmread(io.BytesIO(single)).pixel_array
    assert np.array_equal(np.frombuffer(single[start:end], "<i2").reshape(256, 256), stored)
    text, skip = base64_cut(base64.b64encode(single).decode(), start, end)
    task = SliceTask(text, "CT", 1.0, -1024.0, header.layout, skip, end - start)
    assert render(task, SETTINGS) == render(SliceTask(base64.b64encode(single).decode(), "CT"), SETTINGS)
    obj, _ = enhanced(4, 256)
    assert read_headers([(0, base64.b64encode(obj).decode()[:PREFIX_CHARS], 0, False)], SETTINGS) == [None]


@pytest.mark.parametrize("syntax", [None, RLELossless])
def test_every_frame_of_a_multi_frame_object_lies_where_its_layout_says(syntax):
    obj, depth = enhanced(6, 32, syntax=syntax) if syntax else enhanced(6, 32)
    header = whole(obj)
    assert len(header.slices) == 6 and header.layout.encapsulated is (syntax is not None)
    assert [s.position[2] for s in header.slices] == depth
    frames = dcmread(io.BytesIO(obj)).pixel_array
    for k, (start, end) in enumerate(header.layout.ranges):
        text, skip = base64_cut(base64.b64encode(obj).decode(), start, end)
        task = SliceTask(text, "CT", 1.0, -1024.0, header.layout, skip, end - start)
        assert render(task, SETTINGS).startswith(b"data:image/jpeg;base64,")
        if header.layout.encapsulated:
            assert len(fragments_of(obj[start:end])) == 1
        else:
            assert np.array_equal(np.frombuffer(obj[start:end], "<i2").reshape(32, 32), frames[k])


def with_pixel_data(obj: bytes, frames: list[bytes], fragments: int, table: bool) -> bytes:
    ds = dcmread(io.BytesIO(obj))
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate(frames, fragments_per_frame=fragments, has_bot=table)
    ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def rle_frames(obj: bytes) -> list[bytes]:
    from pydicom.encaps import generate_frames

    ds = dcmread(io.BytesIO(obj))
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))


def test_several_fragments_per_frame_are_split_by_the_basic_offset_table():
    obj, _ = enhanced(3, 32, syntax=RLELossless)
    frames = rle_frames(obj)
    split = whole(with_pixel_data(obj, frames, 2, table=True))
    rebuilt = with_pixel_data(obj, frames, 2, table=True)
    for k, (start, end) in enumerate(split.layout.ranges):
        assert b"".join(fragments_of(rebuilt[start:end])) == frames[k]


def test_several_fragments_per_frame_without_an_offset_table_are_refused():
    obj, _ = enhanced(3, 32, syntax=RLELossless)
    (refusal,) = read_headers(
        [(0, base64.b64encode(with_pixel_data(obj, rle_frames(obj), 2, table=False)).decode(), 0, True)],
        SETTINGS,
    )
    assert isinstance(refusal, ImageRefused) and "no offset table" in refusal.message


def test_truncated_multi_frame_pixel_data_is_refused():
    obj, _ = enhanced(4, 32)
    (refusal,) = read_headers([(0, base64.b64encode(obj[:-3000]).decode(), 0, True)], SETTINGS)
    assert isinstance(refusal, ImageRefused) and refusal.code == "invalid_dicom"


@pytest.mark.parametrize("how", ["rle", "deflated"])
def test_a_compressed_single_frame_object_is_decoded_whole(how):
    ds = dcmread(io.BytesIO(ct_series(1, 256).objects[0]))
    if how == "rle":
        ds.compress(RLELossless)
        buf = io.BytesIO()
        ds.save_as(buf)
    else:
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        buf = io.BytesIO()
        ds.save_as(buf)
    header = prefix_header(buf.getvalue())
    # The whole object then goes to phase 2, as pydicom reads it.
    assert header is None or header.layout is None


def variant(bits_allocated: int, bits_stored: int, signed: bool) -> bytes:
    """A plain CT slice re-stored with other pixel attributes (the values kept within what they can hold)."""
    ds = dcmread(io.BytesIO(ct_series(1, 256, seed=3).objects[0]))
    values = ds.pixel_array.astype(np.int32)
    low, high = (
        (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    )
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}
    stored = np.clip(values - values.min() + low, low, high).astype(dtype[bits_allocated, signed])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW" if bits_allocated > 8 else "OB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("bits", [(16, 16, True), (16, 12, True), (16, 12, False), (8, 8, False)])
def test_a_plain_slice_decoded_from_its_frame_bytes_renders_as_the_whole_object_does(bits):
    obj = variant(*bits)
    header = prefix_header(obj)  # plain pixels: phase 1 reads the layout from a prefix
    ((start, end),) = header.layout.ranges
    text, skip = base64_cut(base64.b64encode(obj).decode(), start, end)
    s = header.slices[0]
    cut = SliceTask(text, "CT", s.slope, s.intercept, header.layout, skip, end - start)
    assert render(cut, SETTINGS) == render(SliceTask(base64.b64encode(obj).decode(), "CT"), SETTINGS)
    short = SliceTask(text, "CT", s.slope, s.intercept, header.layout, skip, end - start - 100)
    with pytest.raises(ImageRefused) as refusal:
        render(short, SETTINGS)
    assert refusal.value.code == "invalid_dicom"
