from __future__ import annotations

import pytest
import torch

from modalens.data.augment import Augmentation
from modalens.errors import SpecError


def _batch():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(6, 14, 24, 24, generator=g)
    coords = torch.arange(24 * 24, dtype=torch.float32).reshape(1, 1, 24, 24)
    target = coords.repeat(6, 1, 1, 1)
    classes = (coords[:, 0].long() % 4).repeat(6, 1, 1)
    valid = torch.rand(6, 24, 24, generator=g) > 0.2
    return image, target, classes, valid


def test_geometry_identical_on_image_target_and_valid():
    image, target, classes, valid = _batch()
    # the image channel 0 is replaced by the coordinates so the flips can be read back
    image[:, 0] = target[:, 0]
    aug = Augmentation({"hflip": 0.5, "vflip": 0.5})
    out_img, out_t, out_v = aug(image, target, valid, seed=11)
    torch.testing.assert_close(out_img[:, 0], out_t[:, 0])
    seen = set()
    for b in range(6):
        for flip_h in (False, True):
            for flip_v in (False, True):
                ref = target[b, 0]
                v = valid[b]
                if flip_h:
                    ref, v = ref.flip(-1), v.flip(-1)
                if flip_v:
                    ref, v = ref.flip(-2), v.flip(-2)
                if torch.equal(out_t[b, 0], ref):
                    assert torch.equal(out_v[b], v)
                    seen.add((flip_h, flip_v))
    assert len(seen) >= 2  # different samples got different flips
    _, out_c, _ = aug(image, classes, valid, seed=11)
    assert out_c.dtype == torch.int64
    torch.testing.assert_close(out_c, (out_t[:, 0].long() % 4))


def test_photometric_touch_only_the_image_and_seed_reproduces():
    image, target, _, valid = _batch()
    aug = Augmentation({"sharpness": 1.0, "erasing": 1.0, "blur": 1.0})
    a = aug(image, target, valid, seed=5)
    b = aug(image, target, valid, seed=5)
    torch.testing.assert_close(a[0], b[0])
    assert torch.equal(a[1], target) and torch.equal(a[2], valid)
    assert not torch.allclose(a[0], image)
    # normalised values outside [0, 1] survive sharpness (kornia clamps to [0, 1])
    sharp = Augmentation({"sharpness": 1.0})(image, seed=1)[0]
    assert sharp.min() < -1 and sharp.max() > 1
    # a constructor seed gives a reproducible stream of calls
    s1 = Augmentation({"blur": 0.5, "hflip": 0.5}, seed=3)
    s2 = Augmentation({"blur": 0.5, "hflip": 0.5}, seed=3)
    for _ in range(3):
        torch.testing.assert_close(s1(image)[0], s2(image)[0])


def test_scene_label_target_untouched_and_off():
    image, _, _, valid = _batch()
    labels = torch.zeros(6, 43)
    out = Augmentation({"hflip": 1.0})(image, labels, valid)
    assert torch.equal(out[1], labels)
    torch.testing.assert_close(out[0], image.flip(-1))
    off = Augmentation({})
    assert off(image, labels, valid)[0] is image and not off.enabled


def test_bad_config_errors():
    with pytest.raises(SpecError, match="unknown augmentation 'rotate'"):
        Augmentation({"rotate": 0.5})
    with pytest.raises(SpecError, match=r"probability must be in \[0, 1\]"):
        Augmentation({"hflip": 2})
    aug = Augmentation({"blur": {"p": 0.3, "kernel_size": 3}})
    assert "blur=0.3" in repr(aug)
