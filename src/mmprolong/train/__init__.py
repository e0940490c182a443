"""Train: packing, collation, the data loader, the loop, parallelisms and checkpoints.

The model itself (families, presets, loading, freezing, saving) is ``mmprolong.models``. ``packing`` plans packed
rows (first-fit decreasing); ``collate`` turns samples and page images into model inputs (packed rows or padded
batches); ``data`` reads a synth ``DATA_DIR`` and yields packed rows per rank, resumably; ``loss`` is the
answer-token loss.
"""
