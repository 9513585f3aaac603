import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from eliq.config import ImageLimits
from eliq.imageio import ImageLoadError, load_image, save_image
from tests.conftest import photo_path


def _rgb_array(height=32, width=48):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5 % 256, y * 7 % 256, (x + y) * 3 % 256], -1).astype(np.uint8)


def _png_bytes(img: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=kwargs.pop("format", "PNG"), **kwargs)
    return buffer.getvalue()


def test_plain_rgb_round_trips_exactly(tmp_path):
    array = _rgb_array()
    path = tmp_path / "a.png"
    Image.fromarray(array).save(path)
    tensor = load_image(path)
    assert tensor.shape == (3, 32, 48) and tensor.dtype == torch.float32
    save_image(tensor, tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), array)


def test_cmyk_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(_rgb_array()).convert("CMYK").save(path, quality=95)
    tensor = load_image(path)
    assert tensor.shape[0] == 3
    reference = torch.from_numpy(_rgb_array()).permute(2, 0, 1).float() / 255
    assert (tensor - reference).abs().mean() < 0.05


def test_16_bit_greyscale_uses_its_full_range(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    tensor = load_image(path)
    assert tensor.shape == (3, 16, 64)
    assert tensor.min() == 0 and tensor.max() == 1
    assert torch.equal(tensor[0], tensor[2])


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    img.paste(1, (4, 0, 8, 8))
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)
    tensor = load_image(path)
    assert torch.allclose(tensor[:, 0, 0], torch.ones(3))  # transparent red -> white
    assert torch.allclose(tensor[:, 0, 7], torch.tensor([0.0, 0.0, 1.0]))


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert torch.allclose(load_image(_png_bytes(img)), torch.ones(3, 4, 4))


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    tensor = load_image(path)
    assert tensor[0].mean() > 0.9 and tensor[1].mean() < 0.1


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(_rgb_array(20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert load_image(path).shape == (3, 40, 20)


def test_truncated_file_is_refused(tmp_path):
    data = photo_path("rocket.jpg").read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageLoadError, match="truncated|corrupt"):
        load_image(path)


def test_garbage_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "missing.png")


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge greyscale image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 8)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _bomb_png(50_000, 50_000)
    assert len(bomb) < 10_000
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(bomb, ImageLimits(max_pixels=10_000_000))


def test_large_images_are_downscaled_to_max_side():
    tensor = load_image(photo_path("hubble_deep_field.jpg"), ImageLimits(max_side=256))
    assert max(tensor.shape[1:]) == 256
    assert tensor.shape[1:] == (223, 256)


def test_a_small_16_bit_png_of_64_megapixels_decodes_within_bounded_memory(tmp_path):
    path = tmp_path / "big16.png"
    Image.fromarray(np.zeros((7999, 8000), dtype=np.uint16)).save(path)
    assert path.stat().st_size < 200_000 and Image.open(path).mode == "I;16"
    tracemalloc.start()  # numpy's allocations are traced: the float copies were 1.5 GB
    try:
        tensor = load_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tensor.shape == (3, 1024, 1024)
    assert peak < 300 * 2**20, f"{peak / 2**20:.0f} MB traced"


def test_decoded_size_counts_bit_depth_and_channels(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (2000, 1500), (10, 20, 30)).save(path)
    with pytest.raises(ImageLoadError, match="11 MB decoded, over the limit of 10 MB"):
        load_image(path, ImageLimits(max_decoded_mb=10))
    assert load_image(path, ImageLimits(max_decoded_mb=12)).shape == (3, 768, 1024)


@pytest.mark.parametrize("size", [(1, 1024), (1024, 1), (4000, 100)])
def test_a_strip_is_refused_before_it_becomes_a_giant_view(tmp_path, size):
    path = tmp_path / "strip.png"
    Image.new("L", size, 128).save(path)
    with pytest.raises(ImageLoadError, match=r"aspect ratio \d+:1 exceeds the limit of 16:1"):
        load_image(path)
