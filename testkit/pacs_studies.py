"""The studies a test PACS holds: a CT and an MR series (testkit/ct_series.py), a chest radiograph (CR), a whole
slide (testkit/wsi_slide.py through OrthancWSIDicomizer), each with patient and study attributes that carry a
canary, so a test can prove none of them reaches a log line or the engine.

    python -m testkit.pacs_studies [--port 8042]    # a demo PACS to try clients/pacs_study.py against
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread

from testkit import orthanc
from testkit.ct_series import ct_series, mr_series
from testkit.dicom_factory import dicom, radiograph16
from testkit.wsi_slide import write_slide

CANARY = "Zebulon-Canary-7431"  # in PatientName, PatientID, StudyDescription, AccessionNumber of every object


@dataclass(frozen=True)
class Series:
    study: str
    series: str
    count: int  # instances

    def url(self, dicomweb_url: str) -> str:
        return f"{dicomweb_url}/studies/{self.study}/series/{self.series}"


@dataclass(frozen=True)
class Studies:
    ct: Series
    mr: Series
    cr: Series
    slide: Series
    ct_instances: list[str]  # SOP Instance UIDs of the CT series


def with_canary(objects: list[bytes]) -> tuple[list[bytes], Series, list[str]]:
    marked, instances = [], []
    for obj in objects:
        ds = dcmread(io.BytesIO(obj))
        ds.PatientName, ds.PatientID = f"{CANARY}^Patient", CANARY
        ds.StudyDescription, ds.AccessionNumber = f"{CANARY} study", CANARY[:16]
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        marked.append(buf.getvalue())
        instances.append(str(ds.SOPInstanceUID))
    return marked, Series(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), len(objects)), instances


def load(pacs: orthanc.Orthanc, workdir: Path, *, ct_slices: int = 120, ct_size: int = 256) -> Studies:
    """Generates and stores every study (~5 s on this machine, most of it the slide)."""
    ct, ct_ref, ct_instances = with_canary(ct_series(ct_slices, ct_size).objects)
    mr, mr_ref, _ = with_canary(mr_series(30, 128).objects)
    cr, cr_ref, _ = with_canary([dicom(radiograph16(512), Modality="CR", BodyPartExamined="CHEST")])
    pacs.store([*ct, *mr, *cr])
    slide = write_slide(workdir / "slide", patient_name=f"{CANARY}^Slide")
    orthanc.dicomize(
        pacs, slide.tiff, slide.dataset, imaged_width_mm=slide.width_mm, imaged_height_mm=slide.height_mm
    )
    return Studies(ct_ref, mr_ref, cr_ref, slide_series(pacs), ct_instances)


@dataclass(frozen=True)
class LoadedPacs:
    server: orthanc.Orthanc
    studies: Studies

    @property
    def dicomweb_url(self) -> str:
        return self.server.dicomweb_url


@contextmanager
def running(workdir: Path, **sizes: int) -> Iterator[LoadedPacs]:
    """An Orthanc on loopback holding the studies, stopped on exit (a test fixture's whole life)."""
    server = orthanc.start(workdir)
    try:
        yield LoadedPacs(server, load(server, workdir, **sizes))
    finally:
        server.stop()


def slide_series(pacs: orthanc.Orthanc) -> Series:
    with urllib.request.urlopen(pacs.dicomweb_url + "/series?Modality=SM", timeout=30) as resp:
        (found,) = json.load(resp)
    return Series(found["0020000D"]["Value"][0], found["0020000E"]["Value"][0], found["00201209"]["Value"][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A demo PACS on loopback: Orthanc holding generated studies."
    )
    parser.add_argument("--port", type=int, default=8042)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        server = orthanc.Orthanc(Path(work), port=args.port).start()
        try:
            studies = load(server, Path(work))
            root = server.dicomweb_url
            print(f"Orthanc at {root}; the gateway's profile needs, under gateway.images:")
            print(f"  dicomweb: {{servers: [{{name: orthanc, base_url: {root}}}]}}")
            for name, series in (("CT", studies.ct), ("MR", studies.mr), ("CR", studies.cr)):
                print(f"{name}: python -m clients.pacs_study {root} {series.study} {series.series}")
            slide = studies.slide
            print(
                f"WSI: python -m clients.pacs_study {root} {slide.study} {slide.series} --slide 'colon, biopsy'"
            )
            print("Ctrl-C stops it (the studies are deleted).", flush=True)
            stops = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stops)
            signal.sigwait(stops)
        finally:
            server.stop()
    return 0


__all__ = ["CANARY", "LoadedPacs", "Series", "Studies", "load", "running"]


if __name__ == "__main__":
    raise SystemExit(main())
