"""A synthetic whole slide for tests and benchmarks: H&E-coloured tissue islands on bright glass, written as a tiled
JPEG TIFF pyramid (tifffile, tile by tile: no whole level in memory) with a real pixel spacing, and the DICOM
dataset OrthancWSIDicomizer needs to make it a VL Whole Slide Microscopy series that wsidicom reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from testkit.pathology import EOSIN, HEMATOXYLIN

TILE = 256
GLASS = np.array([243, 241, 244], dtype=np.float32)  # bright background: the tissue detector's "no tissue"


@dataclass(frozen=True)
class Slide:
    tiff: Path
    dataset: Path
    width_px: int  # level 0
    height_px: int
    spacing_um: float  # level 0, square pixels
    islands: tuple[tuple[float, float, float, float], ...]  # (cx, cy, rx, ry) in um: where the tissue is

    @property
    def width_mm(self) -> float:
        return self.width_px * self.spacing_um / 1000

    @property
    def height_mm(self) -> float:
        return self.height_px * self.spacing_um / 1000

    def tissue_at(self, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
        inside = np.zeros(np.broadcast(x_um, y_um).shape, bool)
        for cx, cy, rx, ry in self.islands:
            inside |= ((x_um - cx) / rx) ** 2 + ((y_um - cy) / ry) ** 2 < 1
        return inside


# Islands as fractions of the slide: two large pieces and a small one; the right edge and bottom-left stay glass.
ISLANDS = ((0.30, 0.32, 0.30, 0.26), (0.60, 0.72, 0.28, 0.24), (0.84, 0.20, 0.12, 0.14))


def write_slide(
    folder: Path,
    *,
    size_px: int = 10752,
    spacing_um: float = 0.5,
    levels: int = 5,
    patient_name: str = "Slide^Synthetic",
    quality: int = 90,
) -> Slide:
    """A size_px square level 0 at spacing_um (0.5 um/px is a 20x scan), then levels halving it. JPEG tiles,
    RGB with 4:2:0 subsampling (the dicomizer copies them into the DICOM as they are). The default is 5.4 mm
    square: at ~10x (1 um/px, level 1) a grid of 6 x 6 patches of 896 pixels, level 4 at 8 um/px for the mask."""
    folder.mkdir(parents=True, exist_ok=True)
    extent = size_px * spacing_um
    islands = tuple((cx * extent, cy * extent, rx * extent, ry * extent) for cx, cy, rx, ry in ISLANDS)
    slide = Slide(folder / "slide.tif", folder / "dataset.json", size_px, size_px, spacing_um, islands)
    with tifffile.TiffWriter(slide.tiff) as tif:
        for level in range(levels):
            side = size_px >> level
            tif.write(
                tiles(slide, side, spacing_um * (1 << level)),
                shape=(side, side, 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": quality},
                subsampling=(2, 2),
                subfiletype=1 if level else 0,
            )
    slide.dataset.write_text(json.dumps(dataset(patient_name), indent=1))
    return slide


def tiles(slide: Slide, side: int, spacing_um: float) -> Iterator[np.ndarray]:
    """Row-major TILE x TILE tiles of one level (edge tiles padded), the same tissue at every level. One stained
    texture and one glass tile per level, cut by each tile's tissue mask: generating the pixels must not cost
    more than encoding them."""
    count = -(-side // TILE)
    stain, glass = textures(spacing_um)
    y, x = np.mgrid[0:TILE, 0:TILE].astype(np.float32) + 0.5
    for ty in range(count):
        for tx in range(count):
            tissue = slide.tissue_at((x + tx * TILE) * spacing_um, (y + ty * TILE) * spacing_um)
            yield np.where(tissue[..., None], stain, glass)


def textures(spacing_um: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(int(spacing_um * 16))
    y, x = (np.mgrid[0:TILE, 0:TILE].astype(np.float32) + 0.5) * spacing_um
    fibres = 0.5 + 0.5 * np.sin(x / 9.0 + 0.7 * np.sin(y / 13.0))
    nuclei = np.sin(x / 4.1) * np.sin(y / 3.7) > 0.75
    stain = np.where(nuclei[..., None], HEMATOXYLIN, EOSIN * (0.85 + 0.15 * fibres[..., None]))
    noise = rng.normal(0.0, 4.0, (2, TILE, TILE, 3)).astype(np.float32)
    return (
        np.clip(stain + noise[0], 0, 255).astype(np.uint8),
        np.clip(GLASS + noise[1], 0, 255).astype(np.uint8),
    )


def dataset(patient_name: str) -> dict:
    """What the dicomizer copies into every instance. ImageType VOLUME: without it wsidicom finds no levels."""
    return {
        "PatientID": "WSI-SYNTH-0",
        "PatientName": patient_name,
        "PatientBirthDate": "19700101",
        "PatientSex": "O",
        "StudyID": "WSI1",
        "SeriesNumber": "1",
        "AccessionNumber": "WSI0001",
        "Manufacturer": "medgemma-serve testkit",
        "ImageType": "ORIGINAL\\PRIMARY\\VOLUME\\NONE",
        "FocusMethod": "AUTO",
        "ExtendedDepthOfField": "NO",
        "ContainerIdentifier": "SLIDE-1",
        "SpecimenDescriptionSequence": [
            {
                "SpecimenIdentifier": "SPECIMEN-1",
                "SpecimenUID": "1.2.826.0.1.3680043.8.498.77",
                "IssuerOfTheSpecimenIdentifierSequence": [],
                "SpecimenPreparationSequence": [],
            }
        ],
        "SpecimenLabelInImage": "NO",
        "BurnedInAnnotation": "NO",
    }


__all__ = ["Slide", "dataset", "write_slide"]
