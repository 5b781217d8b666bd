"""`python -m benchmarks.pacs`: studies from a PACS (DICOMweb references vs inline DICOM, retrieval concurrency)."""
