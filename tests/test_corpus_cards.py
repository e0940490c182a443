"""The large-print corpus: fact cards on the 28-px token grid, a truth that is true of the PDFs, archive registers."""

import pypdfium2 as pdfium
import pytest

from mmprolong.corpus import generate_document, load_truth, make_corpus
from mmprolong.corpus.cards import CARD_SIZE, CELL_PT, COLUMNS, ROWS, archive_names, wrap
from mmprolong.errors import ConfigError, ResumeError
from mmprolong.tokens import image_tokens

DECKS = dict(docs=8, seed=4, min_pages=12, max_pages=20, layout="large-print")


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    out = tmp_path_factory.mktemp("cards")
    docs = []
    for path in make_corpus(out, **DECKS):
        pdf = pdfium.PdfDocument(path)
        docs.append((load_truth(path), [pdf[i] for i in range(len(pdf))]))
    return out, docs


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_cards_render_at_72_dpi_to_exactly_12_by_10_tokens(decks):
    _, docs = decks
    assert CARD_SIZE == (336.0, 280.0) and COLUMNS * CELL_PT == 336.0 and ROWS * 2 * CELL_PT == 280.0
    for _, pages in docs:
        for page in pages:
            assert page.get_size() == CARD_SIZE
    # 336 x 280 px are multiples of 28, inside the quickstart's budget: the processor keeps them as they are.
    assert image_tokens(280, 336, min_pixels=56 * 56, max_pixels=128 * 28 * 28) == 12 * 10


def test_every_glyph_sits_in_one_token_row_and_one_character_cell(decks):
    """Two characters per 28-px token column and one line per 28-px row: a glyph crosses no token edge by more
    than its serif."""
    _, docs = decks
    checked = 0
    for _, pages in docs[:3]:
        for page in pages:
            text = page.get_textpage()
            for index in range(text.count_chars()):
                char = text.get_text_range(index, 1)
                if not char.strip():
                    continue
                left, bottom, right, top = text.get_charbox(index)
                row = int((CARD_SIZE[1] - top) // (2 * CELL_PT))
                assert CARD_SIZE[1] - (row + 1) * 2 * CELL_PT <= bottom, (char, row, bottom)
                cell = int((left + right) / 2 // CELL_PT)  # bold m and w overhang their 14-pt cell by < 1 pt
                assert cell * CELL_PT - 1 <= left and right <= (cell + 1) * CELL_PT + 1, (char, left, right)
                checked += 1
    assert checked > 1000


def test_every_fact_is_in_the_text_layer_of_its_page_and_inside_its_box(decks):
    _, docs = decks
    checked = 0
    for truth, pages in docs:
        for fact in truth.facts:
            page = pages[fact.page]
            textpage = page.get_textpage()
            assert _norm(fact.rendered) in _norm(textpage.get_text_range()), (truth.doc_name, fact)
            width, height = page.get_size()
            x0, y0, x1, y1 = fact.bbox
            inside = textpage.get_text_bounded(x0 * width, (1 - y1) * height, x1 * width, (1 - y0) * height)
            assert _norm(fact.rendered) == _norm(inside), (truth.doc_name, fact, inside)
            checked += 1
    assert checked > 150


def test_sections_partition_the_pages_and_questions_find_their_groups(decks):
    _, docs = decks
    for truth, pages in docs:
        covered = [p for s in truth.sections for p in range(s.start_page, s.end_page + 1)]
        assert covered == list(range(len(pages))), truth.doc_name
        assert truth.layout == "large-print"
        pairs = [(f.entity, f.attribute) for f in truth.facts]
        assert len(pairs) == len(set(pairs))  # one answer per (entity, attribute)
    assert sum(bool(t.groups) for t, _ in docs) >= len(docs) - 1


def test_registers_are_note_cards_of_distinct_archives():
    registers = []
    for index in range(40):
        _, truth = generate_document(index, seed=11, min_pages=6, max_pages=10, layout="large-print")
        if truth.kind == "notes":
            registers.append(truth)
    assert 2 <= len(registers) <= 14  # about 15% of the documents
    for truth in registers:
        assert [f.page for f in truth.facts] == list(range(1, truth.num_pages))
        assert {f.attribute for f in truth.facts} == {"secret code"}
        assert len({f.entity for f in truth.facts}) == len(truth.facts)
        assert all(len(f.value) == 6 and f.value.isdigit() for f in truth.facts)


def test_archive_names_are_distinct_beyond_the_88_constellations():
    names = archive_names(200)
    assert len(names) == len(set(names)) >= 200 and names[0].endswith(" archive")


def test_wrap_keeps_words_and_cuts_only_overlong_ones():
    assert wrap("Customer Experience Programme: Steering Committee Review Q4 2023") == [
        "Customer Experience", "Programme: Steering", "Committee Review Q4", "2023"]
    assert wrap("x" * 30) == ["x" * 22, "x" * 8]


@pytest.mark.parametrize("other", [{"layout": "standard"}, {"register_share": 0.0, "specimen_share": 1.0}])
def test_a_folder_made_with_other_settings_is_refused(tmp_path, other):
    make_corpus(tmp_path, **{**DECKS, "docs": 2})
    with pytest.raises(ResumeError, match="other settings"):
        make_corpus(tmp_path, **{**DECKS, "docs": 2, **other})


def test_specimen_share_sets_the_mix_and_specimens_state_no_facts():
    kinds = [generate_document(i, seed=9, min_pages=4, max_pages=5, layout="large-print", shares=(0.1, 0.6))[1]
             for i in range(50)]
    specimens = [t for t in kinds if t.kind == "specimen"]
    assert 20 <= len(specimens) <= 40 and all(not t.facts for t in specimens)
    with pytest.raises(ConfigError, match="specimen_share"):
        make_corpus("unused", docs=1, seed=0, layout="large-print", register_share=0.5, specimen_share=0.6)


def test_register_gap_puts_white_catalogue_cards_between_the_notes(tmp_path):
    """Each note is followed by 1..gap catalogue cards with no facts (the last note may be cut short by the end);
    every note still states its code on its page; gap 0 keeps the notes-only register byte for byte; a folder
    made with the other setting is refused."""
    plain = generate_document(3, seed=11, min_pages=20, max_pages=30, layout="large-print", shares=(1.0, 0.0))
    assert plain == generate_document(3, seed=11, min_pages=20, max_pages=30, layout="large-print",
                                      shares=(1.0, 0.0), register_gap=0)
    for index in range(6):
        data, truth = generate_document(index, seed=11, min_pages=20, max_pages=30, layout="large-print",
                                        shares=(1.0, 0.0), register_gap=3)
        pages = [f.page for f in truth.facts]
        gaps = [b - a - 1 for a, b in zip(pages, pages[1:])]
        assert pages[0] == 1 and gaps and all(1 <= g <= 3 for g in gaps) and truth.num_pages - 1 - pages[-1] <= 3
        assert len(set(gaps)) > 1  # drawn, not fixed
        pdf = pdfium.PdfDocument(data)
        for page in range(1, truth.num_pages):
            text = _norm(pdf[page].get_textpage().get_text_range())
            notes = [f for f in truth.facts if f.page == page]
            assert ("Secret code" in text) == bool(notes)
            assert all(f.entity in text and f.value in text for f in notes)
    with pytest.raises(ConfigError, match="register_gap"):
        make_corpus(tmp_path / "bad", docs=1, seed=0, layout="large-print", register_gap=-1)
    registers = {**DECKS, "docs": 4, "register_share": 1.0, "specimen_share": 0.0}
    make_corpus(tmp_path / "gap", **registers, register_gap=2)
    make_corpus(tmp_path / "gap", **registers, register_gap=2)  # the same settings resume
    with pytest.raises(ResumeError, match="register_gap=0"):
        make_corpus(tmp_path / "gap", **registers)
