"""Requests the load tester sends: varied prompts, fixed output length, images as PNG data URLs."""

import base64
import io
import json

from PIL import Image

from benchmarks.core.workload import Workload, item_kind, request_body
from testkit.radiographs import ImageCache, radiograph


class SmallImages:
    def __init__(self):
        self.cache = ImageCache()
        self.asked = []

    def data_url(self, size):
        self.asked.append(size)
        return self.cache.data_url(32)  # the size is recorded; a small image keeps the test fast


def test_text_requests_vary_and_fix_the_output_length():
    w = Workload("text", "m", input_tokens=64, output_tokens=12)
    bodies = [json.loads(request_body(w, i)[1]) for i in range(3)]
    prompts = [b["messages"][0]["content"] for b in bodies]
    assert len(set(prompts)) == 3
    assert len({p.split()[1] for p in prompts}) == 3  # they differ from the first words: no shared prefix
    assert all(b["max_tokens"] == 12 and b["ignore_eos"] is True for b in bodies)
    assert bodies[0]["stream"] is True and bodies[0]["stream_options"] == {"include_usage": True}
    assert 40 <= len(prompts[0].split()) <= 60


def test_same_prompt_repeats_one_prompt():
    w = Workload("text", "m", same_prompt=True)
    assert request_body(w, 0)[1] == request_body(w, 5)[1]


def test_no_stream_drops_stream_options():
    body = json.loads(request_body(Workload("text", "m", stream=False), 0)[1])
    assert body["stream"] is False and "stream_options" not in body


def test_image_items_alternate_sizes_and_put_text_before_the_image():
    images = SmallImages()
    w = Workload("image", "m", image_sizes=(896, 2048))
    kinds = [request_body(w, i, images)[0] for i in range(4)]
    assert kinds == ["image-896", "image-2048", "image-896", "image-2048"]
    assert images.asked == [896, 2048, 896, 2048]
    parts = json.loads(request_body(w, 0, images)[1])["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_mix_is_deterministic_and_holds_both_kinds():
    w = Workload("mix", "m", image_fraction=0.5)
    kinds = [item_kind(w, i) for i in range(200)]
    assert kinds == [item_kind(w, i) for i in range(200)]
    assert 60 < kinds.count("text") < 140


def test_radiograph_is_a_grayscale_png_of_the_asked_size():
    url = ImageCache().data_url(96)
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert (img.format, img.size, img.mode) == ("PNG", (96, 96), "L")
    pixels = radiograph(96)
    assert pixels.min() < 60 and pixels.max() > 180  # dark lungs and bright bone, not a flat field


def test_image_cache_makes_each_size_once():
    cache = ImageCache()
    assert cache.data_url(40) is cache.data_url(40)
