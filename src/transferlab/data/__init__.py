"""Data sets: sources, the normalized on-disk format, subsampling."""
