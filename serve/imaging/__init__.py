"""Pixels for the model: DICOM and raster decoding, windowing to 8 bits, resizing to the model's input size."""
