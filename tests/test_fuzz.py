"""Fuzzing the three readers of outside input (hypothesis, a fixed budget of examples,
derandomized so every run and machine tries the same inputs): whatever bytes arrive, the
manifest reader returns positives or a ManifestError, the image loader a bounded (3, H, W)
tensor in [0, 1] or an ImageLoadError, and the prompt parser a record (or, for a lone
surrogate, which is not text, a ValueError saying so). Nothing else."""

import io
import string
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from eliq.config import ImageLimits
from eliq.imageio import ImageLoadError, load_image
from eliq.pairs.positives import ManifestError, read_positives
from eliq.prompts.record import PromptRecord

BUDGET = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ANY_CHARACTER = st.characters(codec=None, categories=None)  # surrogates and controls too
FIELD = st.text(alphabet=st.sampled_from(string.printable + "é,\"'\x00\ud800"), max_size=12)


def manifest_texts():
    """CSV made of plausible pieces (headers, commas, quotes, newlines, NULs) or anything."""
    header = st.lists(st.sampled_from(["image", "prompt", "seed", "mos", "", "image "]), max_size=5)
    rows = st.lists(st.lists(FIELD, max_size=6), max_size=6)
    structured = st.builds(
        lambda h, r: "\n".join([",".join(h), *(",".join(row) for row in r)]), header, rows
    )
    return st.one_of(structured, st.text(alphabet=ANY_CHARACTER, max_size=200))


@BUDGET
@given(text=manifest_texts(), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_the_manifest_reader_returns_positives_or_a_manifest_error(text, suffix):
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / f"manifest{suffix}"
        manifest.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            positives = read_positives(manifest, confine=True)
        except ManifestError as error:
            assert str(manifest) in str(error)
            return
        for positive in positives:
            assert positive.image.resolve().is_relative_to(Path(folder).resolve())
            assert positive.prompt is None or positive.prompt == positive.prompt.strip()
            assert positive.seed is None or isinstance(positive.seed, int)


def encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@st.composite
def image_bytes(draw):
    """A small real image in a common format, then damaged at a few places (or not)."""
    mode = draw(st.sampled_from(["RGB", "L", "RGBA", "P", "I;16", "1"]))
    image_format = draw(st.sampled_from(["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"]))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    colour = draw(st.integers(0, 255))
    image = Image.new("L", size, colour).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        image = Image.new("I;16", size, colour * 257)
    try:
        data = bytearray(encoded(image, image_format))
    except (OSError, ValueError, KeyError):
        data = bytearray(encoded(image.convert("RGB"), "PNG"))
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


LIMITS = ImageLimits(max_side=64)


@BUDGET
@given(data=st.one_of(image_bytes(), st.binary(max_size=300)))
def test_the_image_loader_returns_a_bounded_image_or_an_image_load_error(data):
    try:
        tensor = load_image(data, LIMITS)
    except ImageLoadError as error:
        assert error.source == "<bytes>" and error.reason
        return
    assert tensor.dtype == torch.float32 and tensor.ndim == 3 and tensor.shape[0] == 3
    assert max(tensor.shape[1:]) <= LIMITS.max_side
    assert max(tensor.shape[1:]) / min(tensor.shape[1:]) <= LIMITS.max_aspect_ratio
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0


WORDS = st.sampled_from(
    ["a", "two", "red", "cats", "on", "the", "left", "of", "blue", "car", "and", ",", "(", "))",
     "photo", "3", "without", "\u200b", "\ud800", "é", "  ", "\n", "--", "🐈"]
)  # fmt: skip


@settings(BUDGET, max_examples=200)
@given(text=st.one_of(st.lists(WORDS, max_size=12).map(" ".join), st.text(ANY_CHARACTER)))
def test_the_prompt_parser_returns_a_record_for_any_text(parser, text):
    try:
        record = parser.parse(text)
    except ValueError as error:  # only for what is not text at all: a lone surrogate
        assert "not valid text: surrogates not allowed" in str(error)
        assert any("\ud800" <= c <= "\udfff" for c in text)
        return
    assert isinstance(record, PromptRecord)
    for slot in record.slots:
        assert 0 <= slot.start <= slot.end <= len(record.text)
