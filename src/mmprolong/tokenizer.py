"""Text tokenizers: load a model's own tokenizer from a local folder, or train the tiny preset's offline.

The tiny preset's tokenizer is a real byte-level BPE in Qwen2's style (Qwen2's pre-tokenizer split,
NFC normalisation, byte-level alphabet) with the Qwen2.5-VL special tokens, trained by
``train_tokenizer`` on the embedded corpus' text, and shipped in ``mmprolong/assets/tokenizer``.
Nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from mmprolong.errors import DataError

# Qwen2.5-VL's added tokens, in the order the released tokenizer numbers them.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen2's pre-tokenizer split: contractions, letter runs, single digits, punctuation runs, newlines.
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def default_tokenizer_dir() -> Path:
    """The folder of the tiny preset's tokenizer, shipped inside the package."""
    return Path(str(resources.files("mmprolong") / "assets" / "tokenizer"))


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, out_dir: str | Path):
    """Train a Qwen2-style byte-level BPE on ``texts`` and save it (tokenizer.json + config) to ``out_dir``.

    Deterministic for the same texts and vocab_size. Returns the loaded fast tokenizer.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size}: must exceed the 256-byte alphabet plus special tokens")
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=1 << 20,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return load_tokenizer(out)


def load_tokenizer(path: str | Path | None = None):
    """Load a tokenizer from a local folder (the tiny preset's when ``path`` is None). Never downloads."""
    from transformers import AutoTokenizer

    folder = Path(path) if path is not None else default_tokenizer_dir()
    if not (folder / "tokenizer.json").is_file() and not (folder / "tokenizer_config.json").is_file():
        raise DataError(f"no tokenizer in {folder}: expected tokenizer.json (a model folder or a tokenizer folder)")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    missing = [t for t in SPECIAL_TOKENS[9:13] if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
    if missing:
        raise DataError(f"tokenizer in {folder} lacks the Qwen-VL vision tokens {missing}")
    return tokenizer
