"""Image-worker jobs for a whole slide on a DICOMweb server, read with wsidicom (which blocks on `requests`: a worker
process, not the event loop). Plan: levels, tissue, the patch boxes. Read: a batch of boxes as model-ready images.
Every failure comes back as an ImageRefused whose code the gateway maps to its DICOMweb envelopes."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from serve.config import ImageSettings
from serve.config.dicomweb import WsiSettings
from serve.imaging import normalise, wsi
from serve.imaging.errors import ImageRefused


@dataclass(frozen=True)
class SlideRef:
    base_url: str
    study: str
    series: str
    authorization: str | None
    connect_timeout_s: float
    timeout_s: float

    def __repr__(self) -> str:  # never a credential or a UID in a log line or a traceback
        return "SlideRef(...)"


@dataclass(frozen=True)
class Plan:
    level: int  # the wsidicom level of the ~10x patches
    um_per_px: float
    boxes: list[wsi.Box]
    tissue: int  # tissue patches found (the boxes are a sample of them, or the client's own)
    first: list[
        bytes
    ]  # the first boxes' data URLs, already read: opening a slide costs ~0.5-1 s of metadata requests


def plan(
    ref: SlideRef,
    recipe: WsiSettings,
    count: int,
    asked: list[wsi.Box] | None,
    settings: ImageSettings,
) -> Plan:
    """Where the patches are, and the first `recipe.patches_per_job` of them read in the same opening."""
    with opened(ref) as slide:
        levels = [level_of(lv) for lv in slide.levels]
        target = wsi.nearest(levels, recipe.target_um_per_px)
        if asked is not None:
            boxes, tissue = wsi.inside(asked, target), len(asked)
        else:
            cells = tissue_of(slide, levels, target, recipe, settings)
            boxes, tissue = wsi.sample(cells, count, recipe.patch_size), len(cells)
        first = patches(slide, target.index, boxes[: recipe.patches_per_job], settings)
        return Plan(target.index, target.um_per_px, boxes, tissue, first)


def tissue_of(
    slide: Any, levels: list[wsi.Level], target: wsi.Level, recipe: WsiSettings, settings: ImageSettings
) -> list[tuple[int, int]]:
    mask_level = wsi.nearest(levels, recipe.mask_um_per_px)
    if mask_level.width * mask_level.height > settings.max_pixels:
        raise ImageRefused("image_dimensions", "the slide's low-magnification level is too large to scan.")
    mask = slide.read_region((0, 0), mask_level.index, (mask_level.width, mask_level.height))
    cells = wsi.tissue_cells(
        mask, target, mask_level, recipe.patch_size, recipe.min_luminance, recipe.max_luminance
    )
    if not cells:
        raise ImageRefused("no_tissue", "no tissue was found on the slide (it looks like bare glass).")
    return cells


def read(ref: SlideRef, level: int, boxes: list[wsi.Box], settings: ImageSettings) -> list[bytes]:
    """Each box of `level` as the data URL the engine is sent (resized to the model's input size)."""
    with opened(ref) as slide:
        return patches(slide, level, boxes, settings)


def patches(slide: Any, level: int, boxes: list[wsi.Box], settings: ImageSettings) -> list[bytes]:
    """Data URLs as ASCII bytes: the gateway splices them into the body it forwards, never re-encoding them."""
    return [
        normalise.normalise(
            slide.read_region((box.x, box.y), level, (box.width, box.height)).convert("RGB"), settings
        ).data_url_bytes()
        for box in boxes
    ]


def level_of(lv: Any) -> wsi.Level:
    spacing_mm = min(float(lv.pixel_spacing.width), float(lv.pixel_spacing.height))
    return wsi.Level(int(lv.level), int(lv.size.width), int(lv.size.height), spacing_mm * 1000.0)


@contextmanager
def opened(ref: SlideRef) -> Iterator[Any]:
    """The slide over DICOMweb, its requests bounded (timeouts, no redirects, no proxy or .netrc from the
    environment); the server's refusals and silences become ImageRefused codes the gateway maps."""
    # Imported here, in the worker: the gateway process never needs wsidicom (~1 s to import).
    from dicomweb_client import DICOMwebClient
    from wsidicom import WsiDicom, WsiDicomWebClient  # type: ignore[import-untyped]
    from wsidicom.errors import WsiDicomError  # type: ignore[import-untyped]

    session = BoundedSession((ref.connect_timeout_s, ref.timeout_s), ref.authorization)
    # pydicom warns, through `warnings` and its logger, of each bulk-data URI wsidicom leaves unread (an ICC
    # profile): noise in the gateway's log for every slide.
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    try:
        client = DICOMwebClient(url=ref.base_url, session=session)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with WsiDicom.open_web(WsiDicomWebClient(client), ref.study, ref.series) as slide:
                yield slide
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise refusal_for(status) from None
    except requests.Timeout:
        raise ImageRefused("dicomweb_timeout", "did not answer in time") from None
    except requests.RequestException as exc:
        raise ImageRefused("dicomweb_unreachable", f"could not be reached ({type(exc).__name__})") from None
    except WsiDicomError as exc:
        raise ImageRefused(
            "invalid_slide", f"the series is not a readable whole slide ({type(exc).__name__})."
        ) from None
    finally:
        session.close()


def refusal_for(status: int) -> ImageRefused:
    if status in (204, 404):
        return ImageRefused("dicomweb_not_found", "series")
    if status in (401, 403):
        return ImageRefused("dicomweb_forbidden", "refused the credential")
    if status >= 500:
        return ImageRefused("dicomweb_unreachable", f"failed (HTTP {status})")
    return ImageRefused("dicomweb_bad_response", f"HTTP {status}")


class BoundedSession(requests.Session):
    """Every request with the timeouts and without redirects; nothing taken from the environment (proxies,
    .netrc credentials)."""

    def __init__(self, timeout: tuple[float, float], authorization: str | None) -> None:
        super().__init__()
        self.timeout = timeout
        self.trust_env = False
        if authorization:
            self.headers["Authorization"] = authorization

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


__all__ = ["Plan", "SlideRef", "plan", "read"]
