"""Feature extractors: uint8 NCHW images in, float32 (n, d) arrays out."""
