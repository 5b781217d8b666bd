"""The volume content part, read and checked (pure): one part, two spellings, and the kinds of source it names.

    {"type": "image_dicom", "image_dicom": {"dicom_source": [<source>, ...], "max_slices": 40, "slice_labels": true}}
    {"type": "image_url", "image_url": {"url": <source>, "volume": {"dicom_source": [<more sources>], ...}}}

A source is a DICOM Part 10 object inline, `data:application/dicom;base64,...` (one per slice in any order, or
one multi-frame object). A DICOMweb URL (https://...) is the other kind, taken by a gateway with DICOMweb servers
configured; the options, recipes and errors are the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serve.config.gateway import VolumeSettings
from serve.gateway.dicomweb.request import OPTIONS as REFERENCE_OPTIONS
from serve.gateway.dicomweb.request import DicomwebSource, dicomweb_source
from serve.gateway.errors import GatewayError, bad_request
from serve.gateway.rewrite.images import ImagePart, parse_data_url
from serve.gateway.rewrite.inline_media import CutText, deferred

DICOM_MEDIA = "application/dicom"
# The reference options (the client's credential, whole-slide patches) apply to DICOMweb sources only.
OPTIONS = ("dicom_source", "max_slices", "slice_labels", *REFERENCE_OPTIONS)


@dataclass(frozen=True)
class InlineSource:
    where: str  # e.g. "messages[0].content[1].image_dicom.dicom_source[3]"
    # The data URL as the request holds it: not copied, a series is hundreds of MB (CutText: still in the body,
    # see inline_media.py; it slices to str and reaches a worker as the str).
    url: str | CutText
    start: int  # where its base64 begins

    @property
    def size(self) -> int:
        return len(self.url) - self.start


@dataclass(frozen=True)
class VolumeSpec:
    where: str  # the content part
    sources: list[InlineSource]
    max_slices: int  # slices to sample: the client's ask, at most the profile's
    labels: bool  # a "SLICE k" text part after each slice, as Google's CT notebook lays the prompt out
    references: tuple[DicomwebSource, ...] = ()  # DICOMweb sources, resolved by serve/gateway/dicomweb/

    @property
    def fewest_images(self) -> int:
        """What the part expands to at least, known before any header is read: one slice per object up to
        max_slices (a single object may be multi-frame: it counts once until its header says more)."""
        return min(len(self.sources) + len(self.references), self.max_slices)


def is_volume(part: dict[str, Any]) -> bool:
    spec = part.get("image_url")
    return part.get("type") == "image_dicom" or (isinstance(spec, dict) and "volume" in spec)


def volume_spec(item: ImagePart, settings: VolumeSettings) -> VolumeSpec:
    """The part's sources and options, checked; refusals are 400s naming the part or the source."""
    part, where = item.part, item.where
    options: dict[str, Any]
    if part.get("type") == "image_dicom":
        key = f"{where}.image_dicom"
        options = checked(part.get("image_dicom"), key)
        raw = sources_of(options, key, required=True)
        located = [(f"{key}.dicom_source[{k}]", url) for k, url in enumerate(raw)]
    else:
        key = f"{where}.image_url.volume"
        options = checked(part["image_url"].get("volume"), key)
        raw = sources_of(options, key, required=False)
        first = part["image_url"].get("url")
        located = [(f"{where}.image_url.url", first)]
        located += [(f"{key}.dicom_source[{k}]", url) for k, url in enumerate(raw)]
    if len(located) > settings.max_objects:
        raise bad_request(
            f"{where}: the volume has {len(located)} DICOM objects; this gateway takes at most "
            f"{settings.max_objects} in one part (send fewer slices, or sample them first).",
            where,
            "too_many_objects",
        )
    found = [inline(at, deferred(url, item.media)) for at, url in located]
    sources = [s for s in found if isinstance(s, InlineSource)]
    references = tuple(s for s in found if isinstance(s, DicomwebSource))
    return VolumeSpec(where, sources, slice_count(options, key, settings), labels(options, key), references)


def checked(options: Any, key: str) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise invalid(key, "must be an object")
    return options


def sources_of(options: dict[str, Any], key: str, *, required: bool) -> list[Any]:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise invalid(f"{key}.{unknown[0]}", f"is not an option (options: {', '.join(OPTIONS)})")
    raw = options.get("dicom_source", [] if not required else None)
    raw = [raw] if isinstance(raw, str) else raw
    if not isinstance(raw, list) or (required and not raw):
        raise invalid(f"{key}.dicom_source", "must be a DICOM data URL or a non-empty list of them")
    return raw


def inline(where: str, url: Any) -> InlineSource | DicomwebSource:
    text = url[:256] if isinstance(url, CutText) else url  # a cut URL: only its header is read here
    if isinstance(text, str) and text.startswith(("https://", "http://")):
        return dicomweb_source(where, text)  # checked against the configured servers when it is resolved
    if not isinstance(text, str) or not text.startswith("data:"):
        raise invalid(where, "must be a 'data:application/dicom;base64,...' URL")
    header = text[: text.find(",") + 1] if "," in text[:256] else text[:256]
    media, _ = parse_data_url(header, where)  # the header alone: the payload is not copied
    if media != DICOM_MEDIA:
        raise invalid(where, f"is {media!r}; a volume's objects are DICOM ('{DICOM_MEDIA}')")
    return InlineSource(where, url, len(header))


def slice_count(options: dict[str, Any], key: str, settings: VolumeSettings) -> int:
    asked = options.get("max_slices", settings.max_slices)
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
        raise invalid(f"{key}.max_slices", "must be a whole number from 1")
    if asked > settings.max_slices:
        raise bad_request(
            f"{key}.max_slices: {asked} slices were asked for; this gateway samples at most "
            f"{settings.max_slices} from a series.",
            f"{key}.max_slices",
            "too_many_images",
        )
    return asked


def labels(options: dict[str, Any], key: str) -> bool:
    value = options.get("slice_labels", True)
    if not isinstance(value, bool):
        raise invalid(f"{key}.slice_labels", "must be true or false")
    return value


def invalid(where: str, what: str) -> GatewayError:
    return bad_request(f"{where} {what}.", where, "invalid_volume")
