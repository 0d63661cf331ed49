"""Tests of ocrmill.pipeline.decode: inputs, formats, modes, orientation, pages and errors."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from ocrmill.errors import (
    ConfigError,
    CorruptImageError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    InputNotFoundError,
    UnsupportedFormatError,
)
from ocrmill.pipeline import decode as decode_module
from ocrmill.pipeline.decode import DecodedImage, decode_image, image_size, iter_pages

CAP = 300_000_000
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


# ------------------------------------------------------------------------------ helpers


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def document(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A white page with a black "word" at rows 10..19, columns 8..31."""
    image = Image.new("RGB", size, WHITE)
    image.paste(BLACK, (8, 10, 32, 20))
    return image if mode == "RGB" else image.convert(mode)


def decode(source: object, **kwargs: object) -> np.ndarray:
    result = decode_image(source, max_pixels=CAP, **kwargs)  # type: ignore[arg-type]
    pixels = result.pixels
    assert pixels.dtype == np.uint8
    assert pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.flags.c_contiguous
    return pixels


def assert_document(pixels: np.ndarray, tolerance: int = 0) -> None:
    """Dark text on a white page, as drawn by ``document``."""
    assert pixels.shape == (30, 40, 3)
    text = pixels[11:19, 9:31].astype(int)
    page = np.concatenate([pixels[:8].reshape(-1, 3), pixels[22:].reshape(-1, 3)]).astype(int)
    assert text.max() <= tolerance
    assert page.min() >= 255 - tolerance


def png_with_size(width: int, height: int) -> bytes:
    """A small real PNG whose IHDR is patched to claim ``width`` x ``height`` (CRC fixed)."""
    data = bytearray(encode(Image.new("L", (8, 8), 255), "PNG"))
    ihdr = 8 + 4  # signature, then the IHDR chunk's length field
    struct.pack_into(">II", data, ihdr + 4, width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 4 + 13]))
    struct.pack_into(">I", data, ihdr + 4 + 13, crc)
    return bytes(data)


def forbid_pixel_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, fail the test if any pixels are decoded."""

    def forbidden(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    monkeypatch.setattr(Image.Image, "load", forbidden)


# ---------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "params", "tolerance"),
    [
        ("PNG", {}, 0),
        ("JPEG", {"quality": 95}, 40),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
        ("GIF", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("BMP", {}, 0),
    ],
)
def test_formats_decode_to_dark_text_on_white(fmt: str, params: dict, tolerance: int) -> None:
    result = decode_image(encode(document(), fmt, **params), max_pixels=CAP)
    assert_document(result.pixels, tolerance)
    assert result.name == "<bytes>"
    assert result.page is None


def test_path_input_keeps_the_path_as_name(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    document().save(path)
    for source in (path, str(path)):
        result = decode_image(source, max_pixels=CAP)
        assert_document(result.pixels)
        assert result.name == str(path)


def test_name_argument_overrides_default_name() -> None:
    result = decode_image(encode(document(), "PNG"), max_pixels=CAP, name="upload.png")
    assert result.name == "upload.png"


def test_bytearray_and_memoryview_inputs() -> None:
    data = encode(document(), "PNG")
    assert_document(decode(bytearray(data)))
    assert_document(decode(memoryview(data)))


# ------------------------------------------------------------------------------ modes


def test_cmyk_jpeg_decodes_dark_on_white() -> None:
    data = encode(document("CMYK"), "JPEG", quality=95)
    assert b"Adobe" in data  # Pillow writes Adobe (inverted) CMYK
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_document(decode(data), tolerance=40)


def test_cmyk_tiff_is_exact() -> None:
    assert_document(decode(encode(document("CMYK"), "TIFF")))


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LA", "RGBA"])
def test_pil_modes_convert_to_document(mode: str) -> None:
    assert_document(decode(document(mode)), tolerance=2)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK"])
def test_modes_survive_a_file_round_trip(mode: str) -> None:
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    assert_document(decode(encode(document(mode), fmt)))


@pytest.mark.parametrize("mode", ["LAB", "HSV"])
def test_lab_and_hsv_convert(mode: str) -> None:
    color = (10, 200, 30)
    pixels = decode(Image.new("RGB", (4, 4), color).convert(mode))
    assert np.abs(pixels.astype(int) - color).max() <= 10


def test_one_bit_pixels_are_black_or_white() -> None:
    image = Image.new("1", (8, 8), 1)
    image.putpixel((2, 3), 0)
    pixels = decode(encode(image, "PNG"))
    assert tuple(pixels[3, 2]) == BLACK
    assert tuple(pixels[0, 0]) == WHITE
    assert set(np.unique(pixels)) == {0, 255}


def test_rgba_transparency_composites_on_white() -> None:
    image = Image.new("RGBA", (3, 1), (0, 0, 0, 0))  # transparent black background
    image.putpixel((1, 0), (0, 0, 0, 255))  # opaque black ink
    image.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent ink
    pixels = decode(encode(image, "PNG"))
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[0, 1]) == BLACK
    assert all(abs(int(v) - 127) <= 1 for v in pixels[0, 2])


def test_la_transparency_composites_on_white() -> None:
    image = Image.new("LA", (2, 1), (0, 0))
    image.putpixel((1, 0), (0, 255))
    pixels = decode(image)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[0, 1]) == BLACK


def test_palette_transparency_composites_on_white() -> None:
    image = Image.new("P", (3, 1), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * (254 * 3))
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 0)
    image.info["transparency"] = 0
    for data in (encode(image, "PNG", transparency=0), encode(image, "GIF", transparency=0)):
        pixels = decode(data)
        assert tuple(pixels[0, 0]) == WHITE
        assert tuple(pixels[0, 1]) == (200, 0, 0)


def test_pa_composites_on_white() -> None:
    image = Image.new("P", (2, 1), 1)
    image.putpalette([0, 0, 0, 0, 0, 200] + [0] * (254 * 3))
    pa = image.convert("PA")
    pa.putpixel((0, 0), (1, 0))
    pixels = decode(pa)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[0, 1]) == (0, 0, 200)


def test_rgb_colour_key_transparency_composites_on_white() -> None:
    image = Image.new("RGB", (2, 1), (1, 2, 3))
    image.putpixel((1, 0), (9, 9, 9))
    pixels = decode(encode(image, "PNG", transparency=(1, 2, 3)))
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[0, 1]) == (9, 9, 9)


def gradient16(width: int = 256) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, width).astype(np.uint16), (4, 1))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_gradient_is_scaled_not_clipped(fmt: str) -> None:
    image = Image.fromarray(gradient16())
    data = encode(image, fmt)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    row = decode(data)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) > 200


@pytest.mark.parametrize("mode", ["I;16B", "I;16L"])
def test_16_bit_byte_orders(mode: str) -> None:
    row = decode(Image.fromarray(gradient16()).convert(mode))[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)


def test_16_bit_data_within_8_bit_range_is_kept() -> None:
    values = np.array([[0, 100, 255]], dtype=np.uint16)
    pixels = decode(encode(Image.fromarray(values), "PNG"))
    assert pixels[0, :, 0].tolist() == [0, 100, 255]


def test_16_bit_divides_by_257() -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    assert decode(Image.fromarray(values))[0, :, 1].tolist() == [0, 100, 255]


def test_32_bit_integer_modes() -> None:
    wide = Image.fromarray(np.array([[-1_000_000, 0, 1_000_000]], dtype=np.int32), "I")
    low, middle, high = decode(wide)[0, :, 0].tolist()
    assert (low, high) == (0, 255) and middle in (127, 128)
    sixteen = Image.fromarray(np.array([[0, 257 * 3, 65535]], dtype=np.int32), "I")
    assert decode(sixteen)[0, :, 0].tolist() == [0, 3, 255]


def test_float_mode_is_min_max_normalised() -> None:
    image = Image.fromarray(np.array([[0.25, 0.5, 0.75]], dtype=np.float32), "F")
    assert decode(image)[0, :, 2].tolist() == [0, 128, 255]
    nan = Image.fromarray(np.array([[np.nan, 2.0, 4.0]], dtype=np.float32), "F")
    assert decode(nan)[0, :, 0].tolist() == [0, 0, 255]


def test_constant_wide_images_map_to_a_constant() -> None:
    flat_f = Image.fromarray(np.full((3, 3), 7.0, dtype=np.float32), "F")
    assert np.unique(decode(flat_f)).tolist() == [7]
    flat_i = Image.fromarray(np.full((3, 3), 10**6, dtype=np.int32), "I")
    assert len(np.unique(decode(flat_i))) == 1


# -------------------------------------------------------------------- EXIF orientation


def marked(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """White image with a red block in its top-left corner."""
    image = Image.new("RGB", size, WHITE)
    image.paste((255, 0, 0), (0, 0, 8, 8))
    return image


def is_red(patch: np.ndarray) -> bool:
    red = patch.astype(int)
    return bool(red[..., 0].min() > 180 and red[..., 1].max() < 80 and red[..., 2].max() < 80)


def with_orientation(orientation: int, fmt: str) -> bytes:
    image = marked()
    if fmt == "TIFF":
        return encode(image, fmt, tiffinfo={0x0112: orientation})
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        params["lossless"] = True
    return encode(image, fmt, exif=exif.tobytes(), **params)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_orientation_6_rotates_clockwise(fmt: str) -> None:
    pixels = decode(with_orientation(6, fmt))
    assert pixels.shape == (40, 20, 3)  # width and height swapped
    assert is_red(pixels[1:6, -6:-1])  # top-left marker is now top-right
    assert not is_red(pixels[1:6, 1:6])


def test_orientation_8_rotates_counter_clockwise() -> None:
    pixels = decode(with_orientation(8, "JPEG"))
    assert pixels.shape == (40, 20, 3)
    assert is_red(pixels[-6:-1, 1:6])  # top-left marker is now bottom-left


def test_orientation_applies_to_pil_input_without_mutating_it() -> None:
    image = Image.open(io.BytesIO(with_orientation(6, "JPEG")))
    pixels = decode(image)
    assert pixels.shape == (40, 20, 3)
    assert image.size == (40, 20)
    assert image.getexif()[0x0112] == 6


# ------------------------------------------------------------------ pages and frames


def three_page_tiff() -> bytes:
    pages = [Image.new("L", (10 + i, 8), value) for i, value in enumerate((10, 120, 230))]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def test_iter_pages_yields_every_tiff_page() -> None:
    pages = list(iter_pages(three_page_tiff(), max_pixels=CAP, name="scan.tif"))
    assert [p.page for p in pages] == [0, 1, 2]
    assert [int(p.pixels[0, 0, 0]) for p in pages] == [10, 120, 230]
    assert [p.pixels.shape[1] for p in pages] == [10, 11, 12]
    assert {p.name for p in pages} == {"scan.tif"}


def test_iter_pages_from_a_path_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    path.write_bytes(three_page_tiff())
    pages = iter_pages(path, max_pixels=CAP)
    first = next(pages)
    assert (first.page, int(first.pixels[0, 0, 0])) == (0, 10)
    pages.close()  # abandoning the iterator closes the file


def test_decode_image_gives_first_tiff_page() -> None:
    result = decode_image(three_page_tiff(), max_pixels=CAP)
    assert result.page == 0
    assert int(result.pixels[0, 0, 0]) == 10


def test_each_page_is_checked_against_the_cap() -> None:
    pages = [Image.new("L", (10, 10), 0), Image.new("L", (100, 100), 0)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    iterator = iter_pages(data, max_pixels=1_000, name="scan.tif")
    assert next(iterator).page == 0
    with pytest.raises(ImageTooLargeError, match=r"scan\.tif \(page 1\).*100x100"):
        next(iterator)


def test_single_page_iter_pages_yields_page_none() -> None:
    pages = list(iter_pages(encode(document(), "PNG"), max_pixels=CAP))
    assert len(pages) == 1 and pages[0].page is None
    assert_document(pages[0].pixels)


def two_frame(fmt: str) -> bytes:
    first = document()
    second = Image.new("RGB", (40, 30), (0, 0, 200))
    params: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    return encode(first, fmt, save_all=True, append_images=[second], duration=100, **params)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_first_frame_and_all_frames(fmt: str) -> None:
    data = two_frame(fmt)
    first = decode_image(data, max_pixels=CAP)
    assert first.page == 0
    assert_document(first.pixels)
    frames = list(iter_pages(data, max_pixels=CAP))
    assert [f.page for f in frames] == [0, 1]
    assert tuple(frames[1].pixels[15, 20]) == (0, 0, 200)


def test_pil_multi_frame_input_keeps_its_frame() -> None:
    image = Image.open(io.BytesIO(three_page_tiff()))
    image.seek(1)
    assert [p.page for p in iter_pages(image, max_pixels=CAP)] == [0, 1, 2]
    assert image.tell() == 1
    result = decode_image(image, max_pixels=CAP, name="mine")
    assert (result.page, int(result.pixels[0, 0, 0]), result.name) == (1, 120, "mine")


# ------------------------------------------------------------------------ numpy input


def test_array_gray_and_single_channel() -> None:
    gray = np.array([[0, 128], [255, 7]], dtype=np.uint8)
    for array in (gray, gray[:, :, np.newaxis]):
        result = decode_image(array, max_pixels=CAP)
        assert result.name == "<array>" and result.page is None
        assert result.pixels.shape == (2, 2, 3)
        assert (result.pixels == gray[:, :, np.newaxis]).all()


def test_array_rgb_is_copied_and_never_modified() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    before = rgb.copy()
    pixels = decode(rgb)
    assert (pixels == rgb).all()
    assert not np.shares_memory(pixels, rgb)
    pixels[:] = 0
    assert (rgb == before).all()


def test_array_non_contiguous_view() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    view = rgb[:, ::-1]
    pixels = decode(view)
    assert (pixels == view).all()


def test_array_rgba_composites_on_white() -> None:
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 1] = (0, 0, 0, 255)
    rgba[0, 2] = (0, 0, 0, 128)
    before = rgba.copy()
    pixels = decode(rgba)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[0, 1]) == BLACK
    assert tuple(pixels[0, 2]) == (127, 127, 127)
    assert (rgba == before).all()


def test_array_dtypes() -> None:
    assert decode(np.array([[False, True]]))[0, :, 0].tolist() == [0, 255]
    assert decode(np.array([[0, 257 * 9, 65535]], dtype=np.uint16))[0, :, 0].tolist() == [0, 9, 255]
    assert decode(np.array([[0, 200]], dtype=np.uint16))[0, :, 0].tolist() == [0, 200]
    assert decode(np.array([[0.0, 0.5, 1.0]]))[0, :, 0].tolist() == [0, 128, 255]
    assert decode(np.array([[-3.0, 100.0, 300.0]], dtype=np.float32))[0, :, 0].tolist() == [
        0,
        100,
        255,
    ]


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros(10, dtype=np.uint8), "shape (10,)"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape (4, 4, 2)"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "shape (4, 4, 5)"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "shape (2, 4, 4, 3)"),
        (np.zeros((4, 4), dtype=np.int64), "dtype int64"),
        (np.zeros((4, 4), dtype=np.int8), "dtype int8"),
        (np.zeros((4, 4), dtype=np.complex64), "dtype complex64"),
        (np.zeros((4, 4), dtype=object), "dtype object"),
        (np.zeros((0, 4, 3), dtype=np.uint8), "shape (0, 4, 3)"),
    ],
)
def test_bad_arrays(array: np.ndarray, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        decode_image(array, max_pixels=CAP, name="frame-7")
    assert "frame-7" in str(caught.value) and fragment in str(caught.value)


def test_empty_array_is_empty_input() -> None:
    with pytest.raises(EmptyInputError, match="<array>"):
        decode_image(np.zeros((0, 0), dtype=np.uint8), max_pixels=CAP)


def test_cap_applies_to_arrays() -> None:
    with pytest.raises(ImageTooLargeError, match=r"<array>.*200x100"):
        decode_image(np.zeros((100, 200), dtype=np.uint8), max_pixels=10_000)


# ------------------------------------------------------------------------- PIL input


def test_pil_input_is_not_modified() -> None:
    image = document("RGBA")
    before = image.tobytes()
    result = decode_image(image, max_pixels=CAP)
    assert result.name == "<PIL image>" and result.page is None
    assert_document(result.pixels)
    assert image.mode == "RGBA" and image.tobytes() == before


def test_cap_applies_to_pil_input() -> None:
    with pytest.raises(ImageTooLargeError, match="<PIL image>"):
        decode_image(document(), max_pixels=100)


# ----------------------------------------------------------------------------- errors


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(InputNotFoundError, match=r"nope\.png"):
        decode_image(missing, max_pixels=CAP)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory") as caught:
        decode_image(tmp_path, max_pixels=CAP)
    assert str(tmp_path) in str(caught.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    document().save(path)
    path.chmod(0)
    try:
        with pytest.raises(InputError, match=r"secret\.png.*permission"):
            decode_image(path, max_pixels=CAP)
    finally:
        path.chmod(0o600)


def test_permission_error_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    path = tmp_path / "locked.png"
    document().save(path)
    monkeypatch.setattr(decode_module, "open", refuse, raising=False)
    with pytest.raises(InputError, match=r"locked\.png.*permission denied"):
        decode_image(path, max_pixels=CAP)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(EmptyInputError, match=r"empty\.jpg"):
        decode_image(path, max_pixels=CAP)


def test_empty_bytes() -> None:
    with pytest.raises(EmptyInputError, match="<bytes>"):
        decode_image(b"", max_pixels=CAP)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is plain text\n",
        np.random.default_rng(42).bytes(4096),
        zip_bytes(),
    ],
    ids=["text", "random", "zip"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"blob\.bin"):
        decode_image(data, max_pixels=CAP, name="blob.bin")


def test_not_an_image_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just text")
    with pytest.raises(UnsupportedFormatError, match=r"notes\.txt"):
        decode_image(path, max_pixels=CAP)


def test_pdf_is_sent_to_ocrmill_run() -> None:
    data = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
    with pytest.raises(UnsupportedFormatError, match=r"doc\.pdf.*PDF.*ocrmill run"):
        decode_image(data, max_pixels=CAP, name="doc.pdf")


def noise(fmt: str) -> bytes:
    image = Image.effect_noise((64, 64), 64).convert("RGB")
    return encode(image, fmt)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "GIF", "WEBP", "BMP"])
def test_truncated_images_are_corrupt(fmt: str) -> None:
    data = noise(fmt)
    with pytest.raises(CorruptImageError, match=r"cut\.img"):
        decode_image(data[: len(data) // 2], max_pixels=CAP, name="cut.img")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_header_only_is_corrupt(fmt: str) -> None:
    with pytest.raises(CorruptImageError, match="<bytes>"):
        decode_image(noise(fmt)[:20], max_pixels=CAP)


def test_bad_png_crc_is_corrupt() -> None:
    data = bytearray(noise("PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    with pytest.raises(CorruptImageError, match=r"<bytes>.*PNG"):
        decode_image(bytes(data), max_pixels=CAP)


def test_truncated_file_on_disk(tmp_path: Path) -> None:
    data = noise("JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptImageError, match=r"cut\.jpg"):
        decode_image(path, max_pixels=CAP)


def test_truncated_still_raises_when_pillow_is_told_to_tolerate_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = noise("JPEG")
    with pytest.raises(CorruptImageError):
        decode_image(data[: len(data) // 2], max_pixels=CAP)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_too_large_is_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    data = png_with_size(50_000, 50_000)
    forbid_pixel_loads(monkeypatch)
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(data, max_pixels=CAP, name="bomb.png")
    message = str(caught.value)
    assert "bomb.png" in message
    assert "50000x50000" in message
    assert "300,000,000" in message
    assert "max_pixels (OCRMILL_DECODE_MAX_PIXELS / --max-pixels)" in message
    with pytest.raises(ImageTooLargeError):
        next(iter_pages(data, max_pixels=CAP))


def test_too_large_real_image() -> None:
    with pytest.raises(ImageTooLargeError, match=r"big\.png.*200x200.*10,000"):
        decode_image(encode(document(size=(200, 200)), "PNG"), max_pixels=10_000, name="big.png")


def test_our_cap_overrides_pillows_bomb_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_document(decode(encode(document(), "PNG")))
        pages = list(iter_pages(three_page_tiff(), max_pixels=CAP))
        assert len(pages) == 3
        assert decode_image(two_frame("GIF"), max_pixels=CAP).page == 0
    assert Image.MAX_IMAGE_PIXELS == 100


def test_pillow_globals_are_restored() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    decode(encode(document(), "PNG"))
    with pytest.raises(CorruptImageError):
        decode_image(noise("PNG")[:200], max_pixels=CAP)
    after = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    assert after == before


def test_unsupported_input_type() -> None:
    with pytest.raises(InputError, match="int"):
        decode_image(42, max_pixels=CAP)  # type: ignore[arg-type]


@pytest.mark.parametrize("cap", [0, -1])
def test_bad_cap_is_a_config_error(cap: int) -> None:
    with pytest.raises(ConfigError, match="max_pixels"):
        decode_image(b"x", max_pixels=cap)


# ------------------------------------------------------------------------ image_size


def test_image_size_reads_the_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    huge, small = png_with_size(50_000, 40_000), encode(document(), "JPEG")
    forbid_pixel_loads(monkeypatch)
    assert image_size(huge) == (50_000, 40_000)
    assert image_size(small) == (40, 30)


def test_image_size_of_arrays_paths_and_pil(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    document().save(path)
    assert image_size(path) == (40, 30)
    assert image_size(np.zeros((30, 40, 3), dtype=np.uint8)) == (40, 30)
    assert image_size(document()) == (40, 30)
    with pytest.raises(InputNotFoundError):
        image_size(tmp_path / "missing.png")


def test_decoded_image_is_frozen() -> None:
    result = decode_image(encode(document(), "PNG"), max_pixels=CAP)
    assert isinstance(result, DecodedImage)
    with pytest.raises(AttributeError):
        result.page = 3  # type: ignore[misc]
