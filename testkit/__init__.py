"""What tests and benchmarks share: fake engines and synthetic images and DICOM."""
