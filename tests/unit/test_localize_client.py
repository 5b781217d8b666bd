"""The localisation example's own arithmetic: the square the model sees, and boxes back in the file's pixels."""

import base64
import io

from PIL import Image

from clients.localize_cxr import Localization, padded_square, to_pixels


def test_a_tall_image_is_padded_to_a_centred_square(tmp_path):
    path = tmp_path / "cxr.png"
    Image.new("L", (200, 256), 200).save(path)
    url, side, top, left = padded_square(str(path))
    square = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert square.size == (256, 256) and (side, top, left) == (256, 0, 28)
    assert square.getpixel((0, 0)) == 0 and square.getpixel((28, 0)) == 200


def test_boxes_on_the_grid_map_back_to_the_original_pixels():
    assert to_pixels([0, 109, 1000, 891], side=256, top=0, left=28) == [0, 0, 256, 200]


def test_the_schema_bounds_every_value_so_a_grammar_always_ends():
    schema = Localization.model_json_schema()
    box = schema["$defs"]["Box"]["properties"]
    assert schema["properties"]["boxes"]["maxItems"] == 4
    assert box["box_2d"]["minItems"] == box["box_2d"]["maxItems"] == 4
    assert (box["box_2d"]["items"]["minimum"], box["box_2d"]["items"]["maximum"]) == (0, 1000)
    assert "enum" in box["label"]
