"""The torch-free preprocessing (optimizer.imaging) computes what the datasets' torch path computes,
on the images of every codec path, and the device half's payloads stay byte-identical to it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_fixtures import TinyStudy
from PIL import Image

from optimizer import data, imaging
from optimizer.deploy import DeviceHalf, ServerHalf, load_image, open_bundle

# 1e-6 in pixel units ([0, 1]); normalised values are divided by the ImageNet std (down to 0.224),
# so they get 1e-6 / 0.224. torch resizes in float32 with its own summation order; we sum in float64.
TOLERANCE = 1e-6 / min(imaging.IMAGENET_STD)


def _torch_model_input(natives: list[np.ndarray], size: int, preprocess: str) -> np.ndarray:
    """The datasets' path (optimizer.data, torch), as the device half ran it before it went torch-free."""
    if preprocess == "grey":
        return data.normalize(data.grey_input01(np.stack(natives), size)).numpy()
    crops = np.stack([data.resize_crop(Image.fromarray(img), size) for img in natives]).astype(np.float32) / 255
    return data.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()).numpy()


def _grey(n: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side), dtype=np.uint8)


@pytest.mark.parametrize("size", [14, 20, 27, 28, 32, 48, 64, 96, 224])
def test_grey_path_equals_torch_when_growing_and_shrinking(size: int) -> None:
    natives = list(_grey(5, 28))
    images01 = imaging.grey_input01(np.stack(natives), size)
    np.testing.assert_allclose(images01, data.grey_input01(np.stack(natives), size).numpy(), rtol=0, atol=1e-6)
    ours = imaging.model_input(natives, size, "grey")
    assert ours.dtype == np.float32 and ours.shape == (5, 3, size, size)
    np.testing.assert_allclose(ours, _torch_model_input(natives, size, "grey"), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("wh", [(40, 30), (17, 50), (300, 224), (32, 32)])
@pytest.mark.parametrize("size", [32, 64])
def test_rgb_crop_path_equals_torch(wh: tuple[int, int], size: int) -> None:
    rng = np.random.default_rng(1)
    natives = [rng.integers(0, 256, (wh[1], wh[0], 3), dtype=np.uint8) for _ in range(3)]
    ours = imaging.model_input(natives, size, "rgb-crop")
    np.testing.assert_allclose(ours, _torch_model_input(natives, size, "rgb-crop"), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 3), (40, 30, 3), (100, 80)])
@pytest.mark.parametrize("size", [16, 32, 96])
def test_server_side_image_input_equals_torch(shape: tuple[int, ...], size: int) -> None:
    """k = 0: the server resizes the decoded image (plain bilinear, no antialias, as the study did)."""
    image = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    expected = data.decoded_image_input(image, size).numpy()
    np.testing.assert_allclose(imaging.decoded_image_input(image, size), expected, rtol=0, atol=TOLERANCE)


def test_weights_of_each_output_pixel_sum_to_one() -> None:
    for n_in, n_out in ((28, 96), (28, 14), (5, 3), (3, 7)):
        one = imaging.resize_bilinear(np.ones((n_in, n_in), np.float32), n_out, antialias=n_out < n_in)
        np.testing.assert_allclose(one, 1.0, atol=1e-6)


def _png_files(tmp: Path, natives: np.ndarray) -> list[Path]:
    paths = []
    for i, native in enumerate(natives):
        path = tmp / f"{i}.png"
        Image.fromarray(native).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize(("k", "codec"), [(0, "image"), (5, "pca"), (10, "float16"), (20, "class-id")])
def test_every_codec_path_sends_what_the_torch_path_sent(tiny: TinyStudy, tmp_path: Path, k: int, codec: str) -> None:
    """Same head input to 1e-6, so the same payload bytes; where the head's output is rounded to
    float16 (k = 10 here), a value on a rounding boundary may land one float16 step away."""
    bundle = open_bundle(tiny.export(tiny.trial_of(k=k), f"img-{k}"))
    assert bundle.codec.kind == codec
    device, server = DeviceHalf(bundle), ServerHalf(bundle)
    identical = 0
    for path in _png_files(tmp_path, _grey(12, 28, seed=3)):
        native = load_image(path, device.preprocess)
        payload = device.encode(native).payload
        if device.session is None:  # k = 0: the payload is the image; the server's resize is what changed
            decoded = np.asarray(Image.open(io.BytesIO(payload[payload.index(b"\x89PNG") :])))
            theirs = data.decoded_image_input(decoded, bundle.input_size).numpy()[None]
            np.testing.assert_allclose(server.tail_input(payload), theirs, rtol=0, atol=TOLERANCE)
            continue
        x = _torch_model_input([native], bundle.input_size, device.preprocess)
        np.testing.assert_allclose(imaging.model_input([native], bundle.input_size, "grey"), x, rtol=0, atol=TOLERANCE)
        torch_payload = device.code(device.session.run(None, {"image": x})[0][0])
        identical += payload == torch_payload
        ours, theirs = server.tail_input(payload), server.tail_input(torch_payload)
        np.testing.assert_allclose(ours, theirs, rtol=2**-10, atol=2**-24)  # at most one float16 step
        assert server.infer(payload).class_index == server.infer(torch_payload).class_index
    if codec in ("pca", "class-id"):  # quantized symbols and the class id: the very same bytes
        assert identical == 12
