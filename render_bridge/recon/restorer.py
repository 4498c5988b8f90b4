"""DriveRestorer: a conditional diffusion model that repairs degraded renders (torch + diffusers).

    cfg = RestorerConfig(image_size=(128, 128))
    restorer = DriveRestorer(cfg, device="cuda")
    history = restorer.fit(degraded, target, RestorerTraining(steps=2000), ckpt_dir="runs/restorer")
    clean = restorer.restore(degraded, seed=0)          # (N, H, W, 3), same dtype as the input
    restorer = DriveRestorer.load("runs/restorer", image_size=(128, 128))

Model: diffusers' `UNet2DModel` with 2*C input channels, the noisy target concatenated
with the degraded frame (the conditioning), C output channels. Training follows a DDPM
schedule (`DDPMScheduler`, `train_timesteps` steps, cosine betas); sampling runs DDIM
with `sample_steps` steps (default 8, trailing spacing, eta = 0), so a seed fixes the
result. `strength < 1` starts from the degraded frame noised to that level instead of
pure noise (fewer effective steps, closer to the input).

Images cross this API as (N, H, W, C) uint8 or float in [0, 1]; inside they are
(N, C, H, W) in [-1, 1]. An optional per-pixel weight mask (N, H, W) >= 0 scales the
loss, e.g. `1 + w * far_field_mask(...)` to favour sky and far field as ReconDreamer does.

Checkpoints are a directory: `model.safetensors` (weights), `optimizer.pt` (Adam state)
and `restorer.json` (model config, step, losses), written atomically every
`ckpt_every` steps; `fit` resumes from it. A checkpoint for another image size or
channel count is refused with an error naming both. A non-finite loss stops training
with `NonFiniteLoss` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import numpy as np
import torch

from jaxsim.config_utils import check_choice, check_range

CONFIG_FILE, MODEL_FILE, OPTIM_FILE = "restorer.json", "model.safetensors", "optimizer.pt"


class NonFiniteLoss(RuntimeError):
    """Training met a NaN / inf loss; `step` is the failing step, `checkpoint` the last good one (or None)."""

    def __init__(self, step: int, checkpoint: str | None):
        super().__init__(f"non-finite restorer loss at step {step}; last good checkpoint: {checkpoint or 'none saved'}")
        self.step, self.checkpoint = step, checkpoint


@dataclasses.dataclass(frozen=True)
class RestorerConfig:
    """Model and schedule. image_size (H, W) pixels, each divisible by 2**(len(block_channels)-1);
    attention adds self-attention to the lowest-resolution block; prediction is what the UNet
    outputs: 'sample' (the clean image), 'epsilon' (the noise) or 'v_prediction'; residual (with
    'sample'): the clean image is predicted as degraded + UNet output, so an untrained restorer
    starts near the identity and learns the correction."""

    image_size: tuple = (128, 128)
    channels: int = 3
    block_channels: tuple = (32, 64, 128, 128)
    layers_per_block: int = 1
    attention: bool = False
    train_timesteps: int = 1000
    sample_steps: int = 8
    beta_schedule: str = "squaredcos_cap_v2"
    prediction: str = "sample"
    residual: bool = True

    def __post_init__(self):
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        object.__setattr__(self, "block_channels", tuple(int(v) for v in self.block_channels))
        if len(self.image_size) != 2:
            raise ValueError(f"RestorerConfig.image_size must be (H, W), got {self.image_size}")
        check_range("RestorerConfig.channels", self.channels, 1, 16)
        check_range("RestorerConfig.sample_steps", self.sample_steps, 1, self.train_timesteps)
        check_choice("RestorerConfig.prediction", self.prediction, ("sample", "epsilon", "v_prediction"))
        check_choice(
            "RestorerConfig.beta_schedule", self.beta_schedule, ("linear", "scaled_linear", "squaredcos_cap_v2")
        )
        if len(self.block_channels) < 2:
            raise ValueError(f"RestorerConfig.block_channels needs >= 2 levels, got {self.block_channels}")
        div = 2 ** (len(self.block_channels) - 1)
        if any(s % div for s in self.image_size):
            raise ValueError(f"RestorerConfig.image_size {self.image_size} must be divisible by {div} "
                             f"(2**(len(block_channels)-1) with block_channels={self.block_channels})")  # fmt: skip

    @staticmethod
    def from_dict(d: dict) -> "RestorerConfig":
        names = {f.name for f in dataclasses.fields(RestorerConfig)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown RestorerConfig fields {sorted(unknown)}; allowed: {sorted(names)}")
        return RestorerConfig(**{"residual": False, **d})  # checkpoints from before the field predicted x0 directly


@dataclasses.dataclass(frozen=True)
class RestorerTraining:
    """Optimisation: steps (total, counting resumed ones), batch images, Adam lr with warmup,
    horizontal flips, checkpoint period (steps), bf16 autocast on CUDA, data seed."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-4
    warmup: int = 100
    grad_clip: float = 1.0
    flip: bool = True
    ckpt_every: int = 500
    bf16: bool = True
    seed: int = 0

    def __post_init__(self):
        check_range("RestorerTraining.steps", self.steps, 1)
        check_range("RestorerTraining.batch_size", self.batch_size, 1)
        check_range("RestorerTraining.lr", self.lr, 0.0)
        check_range("RestorerTraining.ckpt_every", self.ckpt_every, 1)


def far_field_mask(K: np.ndarray, height: int, width: int, band_px: float = 0.0) -> np.ndarray:
    """(H, W) float32 mask, 1 above the horizon row of a level camera (rows < cy + band_px): sky and
    far field, where novel-view renders degrade most. K (3, 3) intrinsics in pixels."""
    rows = np.arange(height, dtype=np.float32)[:, None] + 0.5
    return np.broadcast_to((rows < float(K[1, 2]) + band_px).astype(np.float32), (height, width)).copy()


def to_model_space(images, device) -> torch.Tensor:
    """(N, H, W, C) uint8 or float [0, 1] (numpy or torch) -> (N, C, H, W) float32 in [-1, 1]."""
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    t = t.to(device)
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    return t.permute(0, 3, 1, 2).contiguous() * 2.0 - 1.0


def from_model_space(x: torch.Tensor, like) -> torch.Tensor | np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) with the dtype and array type of `like`."""
    img = ((x.float().clamp(-1, 1) + 1.0) * 0.5).permute(0, 2, 3, 1).contiguous()
    uint8 = (like.dtype == torch.uint8) if isinstance(like, torch.Tensor) else (np.asarray(like).dtype == np.uint8)
    img = (img * 255.0 + 0.5).to(torch.uint8) if uint8 else img
    if isinstance(like, torch.Tensor):
        return img.to(like.device)
    return img.cpu().numpy()


def build_unet(cfg: RestorerConfig):
    """The diffusers UNet2DModel: in 2*C channels (noisy target | degraded), out C."""
    from diffusers import UNet2DModel

    n = len(cfg.block_channels)
    down = ["DownBlock2D"] * n
    up = ["UpBlock2D"] * n
    if cfg.attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(sample_size=cfg.image_size, in_channels=2 * cfg.channels, out_channels=cfg.channels,
                       block_out_channels=cfg.block_channels, layers_per_block=cfg.layers_per_block,
                       down_block_types=tuple(down), up_block_types=tuple(up),
                       norm_num_groups=min(32, math.gcd(*cfg.block_channels)))  # fmt: skip


class DriveRestorer:
    """Conditional diffusion restorer (see the module docstring)."""

    def __init__(self, cfg: RestorerConfig = RestorerConfig(), device=None):
        from diffusers import DDIMScheduler, DDPMScheduler

        self.cfg = cfg
        self.device = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.unet = build_unet(cfg).to(self.device)
        if (
            cfg.residual and cfg.prediction == "sample"
        ):  # zero correction at start: an untrained restorer is the identity
            torch.nn.init.zeros_(self.unet.conv_out.weight)
            torch.nn.init.zeros_(self.unet.conv_out.bias)
        self.train_sched = DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                                         prediction_type=cfg.prediction, clip_sample=True)  # fmt: skip
        self.sample_sched = DDIMScheduler.from_config(self.train_sched.config, timestep_spacing="trailing")
        self.step = 0
        self.losses: list[float] = []
        self.optimizer = None

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.unet.parameters())

    def _autocast(self, enabled: bool = True):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and self.device.type == "cuda")

    def check_images(self, images, name: str = "images") -> None:
        shape = tuple(images.shape)
        want = self.cfg.image_size + (self.cfg.channels,)
        if len(shape) != 4 or shape[1:] != want:
            raise ValueError(f"{name} must be (N, {want[0]}, {want[1]}, {want[2]}) for this restorer "
                             f"(image_size={self.cfg.image_size}, channels={self.cfg.channels}), got {shape}")  # fmt: skip

    def predict(self, noisy: torch.Tensor, degraded: torch.Tensor, t) -> torch.Tensor:
        """The model output in the scheduler's terms (cfg.prediction), float32: UNet on [noisy | degraded]
        at timestep(s) t, plus the degraded frame when cfg.residual and prediction is 'sample'."""
        with self._autocast():
            out = self.unet(torch.cat([noisy, degraded], dim=1), t).sample
        out = out.float()
        return out + degraded if self.cfg.residual and self.cfg.prediction == "sample" else out

    # ---- training ----
    def loss(self, degraded: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Weighted MSE of the UNet's prediction for one batch in model space: degraded and target
        (B, C, H, W) in [-1, 1], weight (B, H, W) or None. Timesteps uniform in [0, train_timesteps)."""
        b = target.shape[0]
        noise = torch.randn(target.shape, generator=generator, device=self.device)
        t = torch.randint(0, self.cfg.train_timesteps, (b,), generator=generator, device=self.device)
        noisy = self.train_sched.add_noise(target, noise, t)
        goal = {"sample": target, "epsilon": noise}.get(self.cfg.prediction)
        if goal is None:
            goal = self.train_sched.get_velocity(target, noise, t)
        err = (self.predict(noisy, degraded, t) - goal).pow(2).mean(dim=1)  # (B, H, W)
        if weight is None:
            return err.mean()
        return (err * weight).sum() / weight.sum().clamp_min(1e-6)

    def fit(self, degraded, target, train: RestorerTraining = RestorerTraining(), weight=None, ckpt_dir: str | None = None,
            progress: bool = True, max_seconds: float = 0.0, log_every: int = 0, log=None) -> dict:  # fmt: skip
        """Train on pairs degraded/target (N, H, W, C) (uint8 or float [0, 1]), weight (N, H, W) or None,
        up to `train.steps` total steps, resuming from `ckpt_dir` when it holds a checkpoint.
        max_seconds > 0: stop after that much wall-clock time (checked every step), saving a checkpoint,
        so a caller with a deadline ends cleanly instead of being killed; log_every > 0: one line per
        that many steps (step, loss, images/s, seconds) through `log` (default: print), with or without
        a progress bar. Returns {"steps", "losses" (per step), "seconds", "images_per_s", "stopped_early"}."""
        self.check_images(degraded, "degraded")
        self.check_images(target, "target")
        if degraded.shape[0] != target.shape[0]:
            raise ValueError(f"degraded and target need the same count, got {degraded.shape[0]} and {target.shape[0]}")
        x_deg, x_tgt = to_model_space(degraded, self.device), to_model_space(target, self.device)
        w = None if weight is None else torch.as_tensor(np.asarray(weight), dtype=torch.float32, device=self.device)
        if w is not None and tuple(w.shape) != (x_tgt.shape[0],) + self.cfg.image_size:
            raise ValueError(
                f"weight must be (N, H, W) = {(x_tgt.shape[0],) + self.cfg.image_size}, got {tuple(w.shape)}"
            )
        if self.optimizer is None:
            self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=train.lr, weight_decay=0.0)
        if ckpt_dir and self.step == 0 and os.path.exists(os.path.join(ckpt_dir, CONFIG_FILE)):
            self._load_into(ckpt_dir, with_optimizer=True)
        gen = torch.Generator(device=self.device)
        sched = lambda s: train.lr * min(1.0, (s + 1) / max(1, train.warmup))  # noqa: E731
        n, start, t0 = x_tgt.shape[0], self.step, time.perf_counter()
        bar = _progress(range(start, train.steps), progress, "restorer")
        log = log or (lambda line: print(line, flush=True))
        stopped = False
        self.unet.train()
        for s in bar:
            if max_seconds > 0 and time.perf_counter() - t0 > max_seconds:
                stopped = True
                break
            gen.manual_seed(train.seed * 1_000_003 + s)  # per-step stream: a resumed run repeats the same batches
            idx = torch.randint(0, n, (train.batch_size,), generator=gen, device=self.device)
            d, g = x_deg[idx], x_tgt[idx]
            wb = None if w is None else w[idx]
            if train.flip:
                flip = torch.rand(train.batch_size, generator=gen, device=self.device) < 0.5
                d, g = (
                    torch.where(flip[:, None, None, None], d.flip(-1), d),
                    torch.where(flip[:, None, None, None], g.flip(-1), g),
                )
                wb = None if wb is None else torch.where(flip[:, None, None], wb.flip(-1), wb)
            for group in self.optimizer.param_groups:
                group["lr"] = sched(s)
            loss = self.loss(d, g, wb, gen)
            if not torch.isfinite(loss):
                good = ckpt_dir if ckpt_dir and os.path.exists(os.path.join(ckpt_dir, CONFIG_FILE)) else None
                raise NonFiniteLoss(s, good)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.unet.parameters(), train.grad_clip)
            self.optimizer.step()
            self.step = s + 1
            self.losses.append(float(loss.detach()))
            if hasattr(bar, "set_postfix") and s % 20 == 0:
                bar.set_postfix(loss=f"{self.losses[-1]:.4f}")
            if ckpt_dir and (self.step % train.ckpt_every == 0 or self.step == train.steps):
                self.save(ckpt_dir)
            if log_every > 0 and (self.step % log_every == 0 or self.step == train.steps):
                el = time.perf_counter() - t0
                log(f"[restorer] step {self.step}/{train.steps}  loss {np.mean(self.losses[-log_every:]):.4f}  "
                    f"{(self.step - start) * train.batch_size / max(el, 1e-9):.0f} img/s  {el:.1f} s")  # fmt: skip
        if stopped:
            log(f"[restorer] stopped at step {self.step}/{train.steps}: max_seconds={max_seconds:g} reached")
            if ckpt_dir and self.step > start:
                self.save(ckpt_dir)
        self.unet.eval()
        secs = time.perf_counter() - t0
        done = self.step - start
        return {"steps": self.step, "losses": self.losses[start:], "seconds": secs, "stopped_early": stopped,
                "images_per_s": done * train.batch_size / secs if secs > 0 and done else 0.0}  # fmt: skip

    # ---- sampling ----
    @torch.no_grad()
    def restore(self, images, seed: int = 0, steps: int | None = None, strength: float = 1.0, batch_size: int = 64):
        """Restored images for degraded `images` (N, H, W, C) uint8 or float [0, 1] (numpy or torch);
        same shape, dtype and array type out. DDIM with `steps` (default cfg.sample_steps), eta 0,
        one start-noise image for the seed: an image restores to the same output wherever it sits
        in a batch. strength in (0, 1]: start noise level (1 = pure noise)."""
        self.check_images(images)
        check_range("strength", strength, 1e-3, 1.0)
        steps = steps or self.cfg.sample_steps
        x_deg = to_model_space(images, self.device)
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        # one noise image for all: each output depends only on its input and the seed (not on batch position)
        noise = torch.randn((1,) + tuple(x_deg.shape[1:]), generator=gen, device=self.device)
        self.sample_sched.set_timesteps(steps, device=self.device)
        ts = self.sample_sched.timesteps
        ts = ts[int(round((1.0 - strength) * len(ts))) :] if strength < 1.0 else ts
        if len(ts) == 0:
            raise ValueError(f"strength={strength} with {steps} steps leaves no denoising step")
        self.unet.eval()
        out = torch.empty_like(x_deg)
        for s in range(0, x_deg.shape[0], batch_size):
            d = x_deg[s : s + batch_size]
            x = noise.expand(d.shape[0], -1, -1, -1)
            if strength < 1.0:
                x = self.sample_sched.add_noise(d, x, ts[:1].expand(d.shape[0]))
            for t in ts:
                x = self.sample_sched.step(self.predict(x, d, t), t, x, eta=0.0).prev_sample
            out[s : s + batch_size] = x
        return from_model_space(out, images)

    # ---- checkpoints ----
    def save(self, ckpt_dir: str) -> str:
        """Write model, optimizer and config atomically into ckpt_dir; returns ckpt_dir."""
        from safetensors.torch import save_file

        os.makedirs(ckpt_dir, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.unet.state_dict().items()}
        meta = {"config": dataclasses.asdict(self.cfg), "step": self.step, "losses": self.losses[-10_000:], "format": 1}
        _atomic(os.path.join(ckpt_dir, MODEL_FILE), lambda p: save_file(state, p, metadata={"step": str(self.step)}))
        if self.optimizer is not None:
            _atomic(os.path.join(ckpt_dir, OPTIM_FILE), lambda p: torch.save(self.optimizer.state_dict(), p))
        _atomic(os.path.join(ckpt_dir, CONFIG_FILE), lambda p: _write_text(p, json.dumps(meta)))
        return ckpt_dir

    @staticmethod
    def read_config(ckpt_dir: str) -> dict:
        path = os.path.join(ckpt_dir, CONFIG_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no restorer checkpoint in {ckpt_dir} (missing {CONFIG_FILE})")
        with open(path) as f:
            return json.load(f)

    def _load_into(self, ckpt_dir: str, with_optimizer: bool) -> None:
        from safetensors.torch import load_file

        meta = self.read_config(ckpt_dir)
        saved = RestorerConfig.from_dict(meta["config"])
        _check_compatible(saved, self.cfg.image_size, self.cfg.channels, ckpt_dir)
        if saved != self.cfg:
            raise ValueError(f"restorer checkpoint {ckpt_dir} has config {saved}, this restorer {self.cfg}")
        self.unet.load_state_dict(load_file(os.path.join(ckpt_dir, MODEL_FILE), device=str(self.device)))
        self.step, self.losses = int(meta["step"]), list(meta.get("losses", []))
        opt_path = os.path.join(ckpt_dir, OPTIM_FILE)
        if with_optimizer and self.optimizer is not None and os.path.exists(opt_path):
            self.optimizer.load_state_dict(torch.load(opt_path, map_location=self.device, weights_only=True))

    @classmethod
    def load(
        cls, ckpt_dir: str, image_size: tuple | None = None, channels: int | None = None, device=None
    ) -> "DriveRestorer":
        """A restorer from ckpt_dir; image_size (H, W) / channels, when given, must match the checkpoint."""
        saved = RestorerConfig.from_dict(cls.read_config(ckpt_dir)["config"])
        _check_compatible(saved, image_size, channels, ckpt_dir)
        r = cls(saved, device=device)
        r._load_into(ckpt_dir, with_optimizer=False)
        r.unet.eval()
        return r


def _check_compatible(saved: RestorerConfig, image_size, channels, where: str) -> None:
    if image_size is not None and tuple(image_size) != saved.image_size:
        raise ValueError(f"restorer checkpoint {where} was trained for image_size (H, W) = {saved.image_size}, "
                         f"but {tuple(image_size)} was asked for: train a restorer for this size")  # fmt: skip
    if channels is not None and channels != saved.channels:
        raise ValueError(f"restorer checkpoint {where} has channels = {saved.channels}, but {channels} was asked for")


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _atomic(path: str, write) -> None:
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, leave=False)


def measure_restore_speed(
    restorer: DriveRestorer, num_images: int = 64, batch_size: int = 32, steps: int | None = None
) -> dict:
    """Restored images per second for `num_images` random frames at the restorer's size, after one
    warm-up batch: {"images_per_s", "image_size", "steps", "batch_size", "seconds"}."""
    h, w = restorer.cfg.image_size
    x = torch.rand((num_images, h, w, restorer.cfg.channels), device=restorer.device)
    restorer.restore(x[:batch_size], steps=steps, batch_size=batch_size)
    if restorer.device.type == "cuda":
        torch.cuda.synchronize(restorer.device)
    t0 = time.perf_counter()
    restorer.restore(x, steps=steps, batch_size=batch_size)
    if restorer.device.type == "cuda":
        torch.cuda.synchronize(restorer.device)
    secs = time.perf_counter() - t0
    return {
        "images_per_s": num_images / secs,
        "image_size": [h, w],
        "steps": steps or restorer.cfg.sample_steps,
        "batch_size": batch_size,
        "seconds": secs,
        "params": restorer.num_params,
    }
