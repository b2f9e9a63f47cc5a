"""The torch-free preprocessing (optimizer.imaging) computes what torch's resize, torchvision's crop
and the normalisation compute, for every policy, and the device half's payloads are the study's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from conftest import TINY_K
from deploy_fixtures import TinyStudy
from PIL import Image

from optimizer import imaging
from optimizer.deploy import DeviceHalf, ServerHalf, load_image, open_bundle
from optimizer.errors import UserError
from optimizer.imaging import Preprocessing

# 1e-6 in pixel units ([0, 1]); normalised values are divided by the std (down to 0.224 for ImageNet's),
# so they get 1e-6 / 0.224. torch resizes in float32 with its own summation order; we sum in float64.
TOLERANCE = 1e-6 / min(imaging.IMAGENET_STD)


def _torch_input(natives: list[np.ndarray], size: int, prep: Preprocessing) -> np.ndarray:
    """The reference: torch's bilinear resize (antialiased when shrinking), torchvision's centre crop."""
    out = []
    for native in natives:
        x = torch.from_numpy(native).float().div(255)
        x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
        if prep.channels == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        h, w = x.shape[1:]
        if prep.resize == "stretch":
            target = (size, size)
        else:
            scale = round(size / prep.crop_fraction) / min(h, w)
            target = (max(size, round(h * scale)), max(size, round(w * scale)))
        if target != (h, w):
            shrink = target[0] < h or target[1] < w
            x = F.interpolate(x[None], size=target, mode="bilinear", align_corners=False, antialias=shrink)[0]
            x = x.clamp(0, 1)
        x = TF.center_crop(x, [size, size])
        mean = torch.tensor(prep.mean).view(-1, 1, 1)
        std = torch.tensor(prep.std).view(-1, 1, 1)
        out.append(((x - mean) / std).numpy())
    return np.stack(out)


def _grey(n: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side), dtype=np.uint8)


@pytest.mark.parametrize("size", [14, 20, 27, 28, 32, 48, 64, 96, 224])
def test_grey_images_equal_torch_when_growing_and_shrinking(size: int) -> None:
    natives = list(_grey(5, 28))
    ours = imaging.model_input(natives, size, Preprocessing())
    assert ours.dtype == np.float32 and ours.shape == (5, 3, size, size)
    np.testing.assert_allclose(ours, _torch_input(natives, size, Preprocessing()), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("wh", [(40, 30), (17, 50), (300, 224), (32, 32)])
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("fraction", [1.0, 0.875])
def test_resize_and_crop_of_colour_images_equals_torch(wh: tuple[int, int], size: int, fraction: float) -> None:
    rng = np.random.default_rng(1)
    natives = [rng.integers(0, 256, (wh[1], wh[0], 3), dtype=np.uint8) for _ in range(3)]
    prep = Preprocessing(crop_fraction=fraction)
    np.testing.assert_allclose(
        imaging.model_input(natives, size, prep), _torch_input(natives, size, prep), atol=TOLERANCE
    )


def test_stretch_resizes_the_whole_image_without_a_crop() -> None:
    native = np.random.default_rng(2).integers(0, 256, (30, 60, 3), dtype=np.uint8)
    prep = Preprocessing(resize="stretch")
    np.testing.assert_allclose(
        imaging.model_input([native], 32, prep), _torch_input([native], 32, prep), atol=TOLERANCE
    )


def test_a_model_of_one_channel_with_its_own_statistics() -> None:
    """Colour becomes grey as Pillow converts it; the model's mean and std normalise it."""
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    prep = Preprocessing(mean=(0.286,), std=(0.353,), channels=1)
    grey = np.asarray(Image.fromarray(colour).convert("L"))
    ours = imaging.model_input([colour, grey], 28, prep)
    assert ours.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(ours[0], ours[1])
    np.testing.assert_allclose(ours[1, 0], (grey / 255 - 0.286) / 0.353, atol=1e-6)


def test_bicubic_uses_pillow_without_rounding_to_bytes() -> None:
    native = np.random.default_rng(4).integers(0, 256, (40, 40), dtype=np.uint8)
    prep = Preprocessing(interpolation="bicubic", mean=(0.0,), std=(1.0,), channels=1)
    plane = Image.fromarray(native.astype(np.float32) / 255, mode="F").resize((32, 32), Image.Resampling.BICUBIC)
    np.testing.assert_allclose(imaging.model_input([native], 32, prep)[0, 0], np.asarray(plane), atol=1e-6)


def test_images_of_several_sizes_go_through_in_one_call() -> None:
    rng = np.random.default_rng(5)
    natives = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((28, 28), (40, 30, 3), (28, 28), (50, 50))]
    ours = imaging.model_input(natives, 32, Preprocessing())
    for i, native in enumerate(natives):
        np.testing.assert_allclose(ours[i], imaging.model_input([native], 32, Preprocessing())[0])


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros(4, np.uint8)])
def test_what_is_not_an_image_is_refused_in_one_line(bad: np.ndarray) -> None:
    with pytest.raises(UserError, match="an image must be uint8 H x W or H x W x 3"):
        imaging.model_input([bad], 32, Preprocessing())


def test_weights_of_each_output_pixel_sum_to_one() -> None:
    for n_in, n_out in ((28, 96), (28, 14), (5, 3), (3, 7)):
        one = imaging.resize_bilinear(np.ones((n_in, n_in), np.float32), n_out)
        np.testing.assert_allclose(one, 1.0, atol=1e-6)


def _png_files(tmp: Path, natives: np.ndarray) -> list[Path]:
    paths = []
    for i, native in enumerate(natives):
        path = tmp / f"{i}.png"
        Image.fromarray(native).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize(("k", "codec"), [(0, "image"), *((k, c) for c, k in TINY_K.items())])
def test_every_codec_path_sends_what_the_study_scored(tiny: TinyStudy, tmp_path: Path, k: int, codec: str) -> None:
    """The device half's input is the study's input (the evaluator's, through the same function), so the
    same payload bytes; at k = 0 the server resizes the decoded image as the study did."""
    bundle = open_bundle(tiny.export(tiny.trial_of(k=k), f"img-{k}"))
    assert bundle.codec.kind == codec
    device, server = DeviceHalf(bundle), ServerHalf(bundle)
    evaluator = tiny.evaluator()
    spec = bundle.manifest["model"]["spec"]
    assert device.preprocessing == evaluator.preprocessing(spec) and device.image_mode == "L"
    for path in _png_files(tmp_path, _grey(6, 28, seed=3)):
        native = load_image(path, device.image_mode)
        payload = device.encode(native).payload
        expected = imaging.model_input([native], bundle.input_size, evaluator.preprocessing(spec))
        if device.session is None:  # k = 0: the payload is the image
            decoded = np.asarray(Image.open(io.BytesIO(payload[payload.index(b"\x89PNG") :])))
            np.testing.assert_array_equal(decoded, native)
            np.testing.assert_array_equal(server.tail_input(payload), expected)
            continue
        assert payload == device.code(device.session.run(None, {"image": expected})[0][0])
