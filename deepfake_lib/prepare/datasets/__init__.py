"""The field's datasets as they download, each read into one table (``table.DatasetTable``): FaceForensics++,
DFDC, DFDC Preview, Celeb-DF and plain real/fake folders."""
