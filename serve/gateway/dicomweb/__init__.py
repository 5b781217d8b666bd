"""Studies from a PACS: volume parts whose sources are DICOMweb references, resolved against allow-listed servers
(QIDO-RS, WADO-RS) and sent through the same recipes as inline DICOM (CT/MR volumes, single images, whole slides)."""
