"""Train: the model (tiny preset or a local Qwen2.5-VL checkpoint), packing, collation and the data loader.

``models`` builds, loads, freezes and saves the model; ``packing`` plans packed rows (first-fit decreasing);
``collate`` turns samples and page images into model inputs (packed rows or padded batches); ``data`` reads a
synth ``DATA_DIR`` and yields packed rows per rank, resumably.
"""
