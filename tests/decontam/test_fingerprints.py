"""Page fingerprints and the settings that drive them."""

import io

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from mmprolong import api
from mmprolong.decontam import DecontamConfig
from mmprolong.decontam.fingerprints import MinHasher, hamming, image_hash, open_image, shingle_hashes
from mmprolong.errors import ConfigError


def test_shingles_ignore_case_and_line_breaks_but_not_words():
    words, a = shingle_hashes("The revenue of Contoso\nrose to 1840 in 2024.", 5)
    _, b = shingle_hashes("the  REVENUE of\r\ncontoso rose to 1840 in 2024", 5)
    _, c = shingle_hashes("The revenue of Contoso rose to 1841 in 2024.", 5)
    assert words == 9 and len(a) == 5
    assert np.array_equal(a, b)
    assert len(np.intersect1d(a, c)) == 2  # the 3 shingles holding the changed number differ
    assert shingle_hashes("", 5)[1].size == 0
    assert shingle_hashes("two words", 5)[1].size == 1  # shorter than a shingle: one shingle of all its words


def test_minhash_estimates_jaccard_of_the_shingle_sets():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    other = np.concatenate([base[:300], rng.integers(0, 2**63, 100, dtype=np.uint64)])  # Jaccard 300/500
    minhash = MinHasher(256)
    assert minhash(base).jaccard(minhash(other)) == pytest.approx(0.6, abs=0.08)
    assert MinHasher(256)(base).jaccard(minhash(base)) == 1.0  # fixed permutations: every process agrees


def _page_png(pdf, index: int, scale: float) -> bytes:
    buffer = io.BytesIO()
    pdf[index].render(scale=scale).to_pil().save(buffer, format="PNG")
    return buffer.getvalue()


def test_page_image_hash_is_robust_to_resolution_and_jpeg_but_tells_pages_apart(tmp_path):
    pdf_path = api.make_corpus(tmp_path, docs=1, seed=2, min_pages=6, max_pages=6)[0]
    pdf = pdfium.PdfDocument(str(pdf_path))
    hashes = np.stack([image_hash(open_image(_page_png(pdf, i, 1.0), 32), 32) for i in range(2, 6)])
    again = []
    for i in range(2, 6):
        image = Image.open(io.BytesIO(_page_png(pdf, i, 0.6))).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=60)
        again.append(image_hash(open_image(buffer.getvalue(), 32), 32))
    distances = hamming(hashes, np.stack(again))
    bits = 1024
    assert hashes.shape == (4, 16)
    assert distances.diagonal().max() < 0.1 * bits  # the same page, smaller and JPEG-compressed
    assert distances[~np.eye(4, dtype=bool)].min() > 0.2 * bits  # other pages of the same document


def test_blank_pages_get_no_hash():
    buffer = io.BytesIO()
    Image.new("RGB", (300, 400), "white").save(buffer, format="PNG")
    assert image_hash(open_image(buffer.getvalue(), 32), 32) is None


def test_hamming_counts_differing_bits():
    a = np.array([[0, 0], [2**64 - 1, 1]], dtype=np.uint64)
    b = np.array([[0, 3], [1, 0]], dtype=np.uint64)
    assert hamming(a, b).tolist() == [[2, 1], [65, 64]]


@pytest.mark.parametrize(("field", "value"), [("text_threshold", 0.0), ("text_threshold", 1.5), ("hash_size", 12),
                                              ("image_distance", 512), ("num_perm", 0), ("image_pages", "some"),
                                              ("image_margin", 0), ("render_max_pixels", 100), ("executor", "slurm")])
def test_bad_settings_name_their_field(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        DecontamConfig.from_dict({field: value})


def test_config_and_store_are_checked_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="'min_image_pages'"):
        api.decontaminate(tmp_path / "nowhere", [tmp_path], tmp_path / "out", DecontamConfig(min_image_pages=0))
    with pytest.raises(Exception, match="not a complete page store"):
        api.decontaminate(tmp_path, [tmp_path], tmp_path / "out")
    assert not (tmp_path / "out").exists()
