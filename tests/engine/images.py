"""Small images made on the fly for the engine tier."""

import base64
import io

from PIL import Image, ImageDraw


def png_data_url(size: int = 64) -> str:
    img = Image.new("L", (size, size), 20)
    ImageDraw.Draw(img).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=200)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
