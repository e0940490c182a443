"""vLLM offline inference on GPU for any supported family (optional; UNTESTED here: no GPU and no vLLM on this
machine).

Written against vLLM's documented multi-modal API: ``LLM(model=..., limit_mm_per_prompt={"image": N},
mm_processor_kwargs={"min_pixels", "max_pixels"}, hf_overrides=...)`` and ``LLM.generate`` on a batch of
``{"prompt": text, "multi_modal_data": {"image": [PIL images]}}`` with ``SamplingParams(temperature=0,
max_tokens=...)``. Each image is one vision start + image pad + vision end placeholder in the prompt, which vLLM
expands to the image's pad run itself; the rest of the prompt is ChatTemplate's layout for the model's family
(read from the folder's config.json).

vLLM 0.33 pins transformers < 5.21 (STACK-NOTES.md): install it in its own environment, or serve the model
with ``vllm serve`` and use the OpenAI-compatible backend. RoPE scaling goes in as ``hf_overrides`` with the
transformers-4 ``rope_scaling`` spelling vLLM reads.
"""

from __future__ import annotations

import time

from mmprolong.errors import MissingDependencyError
from mmprolong.eval.backends.base import Answer, Backend, GenerationSettings
from mmprolong.eval.items import EvalItem
from mmprolong.eval.rope_scaling import RopeScaling
from mmprolong.models import DEFAULT_FAMILY, ModelFamily, family_of_checkpoint
from mmprolong.template import prompt_text


def import_vllm():
    try:
        import vllm
    except ImportError:
        raise MissingDependencyError("vllm", "vllm") from None
    return vllm


def image_placeholder(family: ModelFamily) -> str:
    """One image in a prompt vLLM expands itself."""
    return family.tokens.vision_start + family.tokens.image_pad + family.tokens.vision_end


def vllm_prompt(item: EvalItem, family: ModelFamily = DEFAULT_FAMILY) -> str:
    body = "".join(p if isinstance(p, str) else image_placeholder(family) for p in item.parts)
    return prompt_text(family, body)


def rope_overrides(rope: RopeScaling, mrope_section: list[int]) -> dict:
    if rope.kind == "none":
        return {}
    scaling = {"rope_type": rope.kind, "type": rope.kind, "factor": rope.factor, "mrope_section": mrope_section}
    if rope.kind == "yarn":
        scaling["original_max_position_embeddings"] = rope.original_max_positions
        return {"rope_scaling": scaling}
    return {"rope_scaling": scaling, "max_position_embeddings": rope.original_max_positions}


class VLLMBackend(Backend):
    """``VLLMBackend(path, max_model_len=..., min_pixels=..., max_pixels=...)``; answers a whole batch per call."""

    name = "vllm"

    def __init__(self, path: str, *, max_model_len: int, min_pixels: int, max_pixels: int, max_images: int = 1024,
                 rope: RopeScaling | None = None, mrope_section: list[int] | None = None,
                 tensor_parallel_size: int = 1, dtype: str = "bfloat16", seed: int = 0, label: str = ""):
        vllm = import_vllm()
        from mmprolong.tokenizer import load_tokenizer

        rope = rope or RopeScaling()
        self.path, self.rope, self._label = path, rope, label or path
        self.family = family_of_checkpoint(path)
        self.max_model_len = max_model_len
        self._budget = (min_pixels, max_pixels)
        self.tokenizer = load_tokenizer(path)
        self.llm = vllm.LLM(
            model=path, max_model_len=max_model_len, limit_mm_per_prompt={"image": max_images},
            mm_processor_kwargs={"min_pixels": min_pixels, "max_pixels": max_pixels},
            hf_overrides=rope_overrides(rope, mrope_section or _mrope_section(path)) or None,
            tensor_parallel_size=tensor_parallel_size, dtype=dtype, seed=seed)
        self.version = getattr(vllm, "__version__", "?")

    def identity(self) -> dict:
        return {"backend": self.name, "model": self._label, "vllm": self.version, "rope": self.rope.describe(),
                "pixels": list(self._budget)}

    def label(self) -> str:
        return self._label

    def pixel_budget(self) -> tuple[int, int]:
        return self._budget

    def generate(self, items, loader, settings: GenerationSettings):
        vllm = import_vllm()
        answers: list[Answer | Exception | None] = [None] * len(items)
        requests, index = [], []
        for i, item in enumerate(items):
            try:
                images = loader.pil(item.images)
            except Exception as exc:  # noqa: BLE001 - the item's error
                answers[i] = exc
                continue
            request = {"prompt": vllm_prompt(item, self.family)}
            if images:
                request["multi_modal_data"] = {"image": images}
            requests.append(request)
            index.append(i)
        if requests:
            params = vllm.SamplingParams(temperature=settings.temperature, max_tokens=settings.max_new_tokens)
            try:
                self._run(requests, index, params, answers)
            except Exception:  # noqa: BLE001 - one bad request fails vLLM's whole batch: retry one by one
                for request, i in zip(requests, index):
                    try:
                        self._run([request], [i], params, answers)
                    except Exception as exc:  # noqa: BLE001 - the item's error
                        answers[i] = exc
        return answers  # type: ignore[return-value]

    def _run(self, requests, index, params, answers) -> None:
        start = time.perf_counter()
        outputs = self.llm.generate(requests, sampling_params=params, use_tqdm=False)
        each = round((time.perf_counter() - start) / len(requests), 4)
        for i, output in zip(index, outputs):
            completion = output.outputs[0]
            answers[i] = Answer(completion.text.strip(), each, len(completion.token_ids))

    def close(self) -> None:
        self.llm = None


def _mrope_section(path: str) -> list[int]:
    """The checkpoint's mRoPE sections (vLLM's rope_scaling override must repeat them)."""
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(path, local_files_only=True).text_config
    return list(text.rope_parameters["mrope_section"])
