"""DriveRestorer on CPU: tiny UNet, tiny images (training lowers the loss, seeded sampling,
checkpoints: resume, size mismatch, non-finite loss)."""

import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
from render_bridge.recon.restorer import (  # noqa: E402
    CONFIG_FILE,
    DriveRestorer,
    NonFiniteLoss,
    RestorerConfig,
    RestorerTraining,
    far_field_mask,
    to_model_space,
)

CFG = RestorerConfig(image_size=(16, 16), block_channels=(16, 32), sample_steps=4)
TRAIN = RestorerTraining(steps=40, batch_size=8, lr=2e-3, warmup=5, ckpt_every=10)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions: threads only add contention on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pairs():
    """Targets: smooth colour gradients; degraded: targets + noise + darkening (a learnable map)."""
    rng = np.random.default_rng(0)
    yy, xx = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    base = rng.random((12, 1, 1, 3))
    tgt = np.clip(base * 0.5 + 0.5 * np.stack([yy, xx, 1 - yy], -1)[None], 0, 1).astype(np.float32)
    deg = np.clip(0.7 * tgt + 0.1 * rng.standard_normal(tgt.shape), 0, 1).astype(np.float32)
    return deg, tgt


def fixed_loss(r, deg, tgt):
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return float(r.loss(to_model_space(deg, "cpu"), to_model_space(tgt, "cpu"), None, g))


def test_training_lowers_loss(pairs):
    torch.manual_seed(0)
    deg, tgt = pairs
    r = DriveRestorer(CFG, device="cpu")
    before = fixed_loss(r, deg, tgt)
    hist = r.fit(deg, tgt, TRAIN, progress=False)
    after = fixed_loss(r, deg, tgt)
    assert hist["steps"] == 40 and len(hist["losses"]) == 40
    assert after < 0.5 * before, (before, after)


def test_sampling_deterministic_for_seed(pairs):
    torch.manual_seed(0)
    deg, _ = pairs
    r = DriveRestorer(CFG, device="cpu")
    torch.nn.init.normal_(r.unet.conv_out.weight, std=0.05)  # not the identity it starts as
    a, b, c = r.restore(deg, seed=7), r.restore(deg, seed=7), r.restore(deg, seed=8)
    assert a.shape == deg.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    # batching does not change a seeded result; uint8 in -> uint8 out; torch in -> torch out
    np.testing.assert_allclose(r.restore(deg, seed=7, batch_size=5), a, atol=1e-5)
    np.testing.assert_allclose(r.restore(deg[3:5], seed=7), a[3:5], atol=1e-5)  # independent of batch position
    u8 = r.restore((deg * 255).astype(np.uint8), seed=7)
    assert u8.dtype == np.uint8 and u8.shape == deg.shape
    assert isinstance(r.restore(torch.from_numpy(deg), seed=7, steps=2, strength=0.5), torch.Tensor)


def test_untrained_residual_restorer_is_the_identity(pairs):
    deg, _ = pairs
    np.testing.assert_allclose(DriveRestorer(CFG, device="cpu").restore(deg, seed=3), deg, atol=1e-5)
    plain = DriveRestorer(RestorerConfig(**{**CFG.__dict__, "residual": False}), device="cpu")
    assert np.abs(plain.restore(deg, seed=3) - deg).mean() > 0.05


def test_wrong_image_size_is_refused(tmp_path, pairs):
    deg, tgt = pairs
    r = DriveRestorer(CFG, device="cpu")
    r.fit(deg, tgt, RestorerTraining(steps=2, batch_size=4, ckpt_every=1), ckpt_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match=r"image_size .*\(16, 16\).*\(32, 32\)"):
        DriveRestorer.load(str(tmp_path), image_size=(32, 32))
    with pytest.raises(ValueError, match="channels = 3"):
        DriveRestorer.load(str(tmp_path), channels=4)
    other = DriveRestorer(RestorerConfig(image_size=(32, 32), block_channels=(16, 32)), device="cpu")
    big = np.zeros((2, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="image_size"):
        other.fit(big, big, RestorerTraining(steps=3, batch_size=2), ckpt_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match=r"images must be \(N, 16, 16, 3\)"):
        r.restore(big)


def test_resume_matches_uninterrupted(tmp_path, pairs):
    deg, tgt = pairs
    cfg = RestorerTraining(steps=12, batch_size=4, lr=1e-3, warmup=2, ckpt_every=6)
    torch.manual_seed(1)
    full = DriveRestorer(CFG, device="cpu")
    init = {k: v.clone() for k, v in full.unet.state_dict().items()}
    full.fit(deg, tgt, cfg, progress=False)

    part = DriveRestorer(CFG, device="cpu")
    part.unet.load_state_dict(init)
    part.fit(deg, tgt, RestorerTraining(**{**cfg.__dict__, "steps": 6}), ckpt_dir=str(tmp_path), progress=False)
    assert json.load(open(os.path.join(tmp_path, CONFIG_FILE)))["step"] == 6
    resumed = DriveRestorer(CFG, device="cpu")  # fresh weights: everything must come from the checkpoint
    hist = resumed.fit(deg, tgt, cfg, ckpt_dir=str(tmp_path), progress=False)
    assert hist["steps"] == 12 and len(hist["losses"]) == 6
    for k, v in full.unet.state_dict().items():
        torch.testing.assert_close(resumed.unet.state_dict()[k], v, atol=1e-5, rtol=1e-4)
    loaded = DriveRestorer.load(str(tmp_path), image_size=(16, 16))
    assert loaded.step == 12


def test_non_finite_loss_keeps_last_good_checkpoint(tmp_path, pairs):
    deg, tgt = pairs
    r = DriveRestorer(CFG, device="cpu")
    r.fit(deg, tgt, RestorerTraining(steps=3, batch_size=4, ckpt_every=3), ckpt_dir=str(tmp_path), progress=False)
    bad = deg.copy()
    bad[:] = np.nan
    with pytest.raises(NonFiniteLoss, match="step 3") as err:
        r.fit(bad, tgt, RestorerTraining(steps=6, batch_size=4, ckpt_every=1), ckpt_dir=str(tmp_path), progress=False)
    assert err.value.checkpoint == str(tmp_path)
    assert DriveRestorer.load(str(tmp_path)).step == 3


def test_mask_weighting():
    K = np.array([[8.0, 0, 8], [0, 8.0, 6], [0, 0, 1]])
    m = far_field_mask(K, 16, 16)
    assert m.shape == (16, 16) and m[:6].min() == 1 and m[6:].max() == 0
    torch.manual_seed(0)
    r = DriveRestorer(CFG, device="cpu")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    loss = lambda w: float(r.loss(x, y, w, torch.Generator().manual_seed(0)).detach())  # noqa: E731
    assert loss(torch.ones(2, 16, 16)) == pytest.approx(loss(None), rel=1e-5)
    top = torch.zeros(2, 16, 16)
    top[:, :8] = 1
    assert loss(top) != pytest.approx(loss(1 - top), rel=1e-3)
