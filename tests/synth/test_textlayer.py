"""Text-layer clozes: any PDF's text gives verifiable questions, without headers, page numbers or references."""

from mmprolong.synth.documents import DocumentView
from mmprolong.synth.generators import QARequest
from mmprolong.synth.generators.textlayer import TextLayerGenerator, boilerplate_lines, cloze_lines, is_quantity
from mmprolong.synth.qa import verify


def test_clozes_skip_headers_page_numbers_and_trailing_commas():
    text = "\n".join(["2.1 Results of the survey", "Annual Report of Northwind 14",
                      "Revenue reached 1,840 units in the year", "call exiting(0, msg) and then stop now"])
    assert cloze_lines(text) == [("Revenue reached 1,840 units in the year", "1,840"),
                                 ("call exiting(0, msg) and then stop now", "0")]
    pages = [f"Annual Report of Northwind {i}\nbody text number {i} here ok" for i in range(5)]
    assert "Annual Report of Northwind #" in boilerplate_lines(pages)


def test_only_quantities_enter_arithmetic():
    assert is_quantity("the pump was rated 12.5 bar at most", "12.5")
    assert not is_quantity("as we have seen in section 11.6 operators are", "11.6")
    assert not is_quantity("see page 14 for the full list of items", "14")
    assert not is_quantity("x = {3, 4};", "3")  # code, not a sentence


def _doc():
    texts = tuple(f"Region {r} sold {100 + 7 * i} units during the quarter\nPage footer line {i}"
                  for i, r in enumerate("ABCDEFGH"))
    return DocumentView(doc_id="d", source="d.pdf", page_texts=texts, page_tokens=(50,) * 8)


def test_every_task_yields_verified_candidates_deterministically():
    generator, doc = TextLayerGenerator(), _doc()
    for task in ("extract-single", "extract-multi", "aggregate", "reasoning", "ocr-needle", "ocr-full"):
        requests = [QARequest(doc=doc, task=task, seed=s, target_tokens=2000) for s in range(20)]
        candidates = generator.propose_many(requests)
        assert candidates == TextLayerGenerator().propose_many(requests)
        made = [c for c in candidates if c is not None]
        assert made, task
        for c in made:
            assert verify(c, doc.page_texts) is None, (task, c)
            if not task.startswith("ocr"):  # transcriptions include footers; clozes never use them
                assert "footer" not in str(c.evidence).lower()


def test_task_filter():
    generator = TextLayerGenerator(tasks=("ocr-needle",))
    request = QARequest(doc=_doc(), task="extract-single", seed=0)
    assert generator.propose_many([request]) == [None]
