"""Serve a camera policy over the official release's HTTP policy protocol (FastAPI + uvicorn).

The release's gym env (`ReconSimulator-v0`) asks a policy server for every action:
    POST /get_action/file   multipart field `obs`: a compressed .npz (loaded with
                            allow_pickle=False) of six float32 (H, W, 3) images under
                            back_left, front_left, front, front_right, back_right, back
    POST /get_action/json   a JSON object with the same six keys, as nested lists
    GET  /healthz           {"status": "ok"}
Both action endpoints answer {"action": [ax_index, ay_index, flag]}: RAD anchor indices
(lateral, longitudinal; 61 x 61 bins) and flag 1 (the release's example policy answers
True there; our simulator ignores it). Errors, as {"detail": "..."} naming the key or
limit: 400 empty / malformed upload, not an npz, a pickled (object) array, missing or
extra key, no `obs` field, invalid JSON; 413 upload over the limit (200 MB, as the
release); 422 invalid values (not (H, W, 3), sizes differing between cameras, a
non-float dtype, NaN/inf, values outside [0, 255]); 500 the policy failed. A bad request
never takes the server down.

What the policy sees (`PolicyServer`):
  - images: the release's keys mapped onto the checkpoint's rig (`render.rig` in
    policy.json): nuscenes6 -> CAM_FRONT, CAM_FRONT_RIGHT, CAM_FRONT_LEFT, CAM_BACK,
    CAM_BACK_LEFT, CAM_BACK_RIGHT from front, front_right, front_left, back, back_left,
    back_right; the front rig uses `front` alone. Pixel values in [0, 1] or [0, 255]
    (`pixel_range`: "auto" takes [0, 1] when no value exceeds 1), rounded to uint8 and
    resized (PIL bilinear, antialiased) to the policy's width x height when they differ.
  - ego state: the release sends none. Camera policies trained with `render.ego_state`
    get zeros in that block (a distribution shift the startup log warns about; train
    with render.ego_state=false for a policy that sees exactly what the release sends).
  - history: our camera policies are feed-forward, so the server keeps no per-client
    state; every request is one independent decision and no new-episode signal exists
    or is needed.
Actions are the policy's greedy (mode) anchors, seed `seed_index` of a multi-seed file.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' `Request` annotations at run time
import io
import json
import logging
import threading
import zipfile

import numpy as np

RELEASE_KEYS = ("back_left", "front_left", "front", "front_right", "back_right", "back")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # the release's limit
FLAG = 1
log = logging.getLogger("reconrl.serve")


class RequestError(Exception):
    """A request the server refuses: HTTP `status` and a `detail` naming the key or limit."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def release_key(camera_name: str) -> str:
    """CAM_FRONT_LEFT -> front_left (the release's key for a nuScenes camera)."""
    return camera_name.removeprefix("CAM_").lower()


def load_npz(contents: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> dict:
    """{key: array} of an uploaded .npz, checked like the release (allow_pickle=False) and more."""
    if not contents:
        raise RequestError(400, "empty obs file")
    if len(contents) > max_bytes:
        raise RequestError(413, f"obs file is {len(contents)} bytes; the limit is {max_bytes} bytes")
    try:
        npz = np.load(io.BytesIO(contents), allow_pickle=False)
    except Exception as err:
        raise RequestError(400, f"obs is not a .npz file (np.load failed: {err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise RequestError(400, "obs is a single .npy array, not a .npz of six named images")
    with npz:
        _check_keys(npz.files)
        # decompressed sizes come from the zip directory: refuse a bomb before inflating it
        total = sum(i.file_size for i in npz.zip.infolist())
        if total > max_bytes:
            raise RequestError(413, f"obs decompresses to {total} bytes; the limit is {max_bytes} bytes")
        out = {}
        for k in RELEASE_KEYS:
            try:
                out[k] = npz[k]
            except ValueError as err:  # object arrays need pickle
                raise RequestError(400, f"key {k!r}: {err}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as err:
                raise RequestError(400, f"key {k!r} cannot be read: {err}") from None
    return out


def parse_json(body: bytes) -> dict:
    """{key: float64 array} of a /get_action/json body (six keys, nested lists)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, f"body is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"body must be a JSON object with keys {list(RELEASE_KEYS)}, got {type(data).__name__}")
    _check_keys(data.keys())
    out = {}
    for k in RELEASE_KEYS:
        try:
            out[k] = np.asarray(data[k], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise RequestError(422, f"key {k!r}: not a nested list of numbers ({err})") from None
    return out


def _check_keys(keys) -> None:
    keys = [k.removesuffix(".npy") for k in keys]
    missing = [k for k in RELEASE_KEYS if k not in keys]
    if missing:
        raise RequestError(400, f"missing key(s) {missing}; the observation needs {list(RELEASE_KEYS)}")
    extra = [k for k in keys if k not in RELEASE_KEYS]
    if extra:
        raise RequestError(400, f"unexpected key(s) {extra}; the observation holds exactly {list(RELEASE_KEYS)}")


def check_images(arrays: dict, pixel_range: str = "auto") -> dict:
    """{key: uint8 (H, W, 3)} from the release's float images; RequestError(422) naming the key."""
    size = None
    for k in RELEASE_KEYS:
        a = arrays[k]
        if a.dtype.kind != "f":
            raise RequestError(422, f"key {k!r}: dtype {a.dtype}; images must be float32 (any float accepted)")
        if a.ndim != 3 or a.shape[-1] != 3 or min(a.shape[:2]) < 8 or max(a.shape[:2]) > 8192:
            raise RequestError(422, f"key {k!r}: shape {a.shape}; images must be (H, W, 3) with 8 <= H, W <= 8192")
        if size is not None and a.shape != size[1]:
            raise RequestError(422, f"key {k!r}: shape {a.shape} differs from {size[0]!r}'s {size[1]}")
        size = size or (k, a.shape)
        if not np.all(np.isfinite(a)):
            raise RequestError(422, f"key {k!r}: {int(a.size - np.count_nonzero(np.isfinite(a)))} NaN/inf value(s)")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-3 or hi > 255.0 + 1e-3:
            raise RequestError(
                422, f"key {k!r}: values in [{lo:g}, {hi:g}]; pixel values must lie in [0, 1] or [0, 255]"
            )
    if pixel_range == "auto":
        scale = 255.0 if all(float(arrays[k].max()) <= 1.0 for k in RELEASE_KEYS) else 1.0
    else:
        scale = 255.0 if pixel_range == "1" else 1.0
    return {k: np.clip(np.rint(arrays[k].astype(np.float32) * scale), 0, 255).astype(np.uint8) for k in RELEASE_KEYS}


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (height, width, 3); unchanged when the size already matches."""
    if image.shape[:2] == (height, width):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


class PolicyServer:
    """A camera policy checkpoint answering the release's observations (see module docstring)."""

    def __init__(self, directory: str, seed_index: int = 0, pixel_range: str = "auto"):
        import jax
        import jax.numpy as jnp

        from agents import policies as pol
        from agents.checkpoint import load_policy
        from render_bridge.cameras import RigConfig

        if pixel_range not in ("auto", "1", "255"):
            raise ValueError(f"pixel range is {pixel_range!r}; allowed: auto, 1, 255")
        network, params, meta, cfg = load_policy(directory)
        if cfg.env.obs != "camera" or not isinstance(meta.get("obs_shape"), dict):
            raise ValueError(f"{directory} is a {cfg.env.obs!r}-observation policy; the release's protocol carries "
                             "only camera images, so only camera policies (env.obs: camera) can be served")  # fmt: skip
        if not network.discrete:
            raise ValueError(
                f"{directory} has a continuous head; the release's protocol answers anchor indices (network.head: discrete)"
            )
        render = meta.get("render") or {}
        if render.get("frames", 1) != 1:
            raise ValueError(
                f"{directory} was trained on render.frames={render['frames']} stacked frames; the release's protocol "
                "sends one frame per request and the server keeps no per-client state: serve render.frames=1 policies"
            )
        rig = RigConfig(
            render.get("rig", cfg.render.rig),
            render.get("width", cfg.render.width),
            render.get("height", cfg.render.height),
        )
        self.keys = [release_key(s.name) for s in rig.specs]
        unknown = [k for k in self.keys if k not in RELEASE_KEYS]
        if unknown:
            raise ValueError(f"{directory}: rig {rig.rig!r} has camera(s) {unknown} the release does not send")
        shape = meta["obs_shape"]
        self.image_shape = tuple(shape["image"])
        if self.image_shape != (rig.num_cameras, rig.height, rig.width, 3):
            raise ValueError(f"{directory}: obs_shape image {self.image_shape} does not match render {rig}")
        self.ego_dim = int(shape["ego"][-1]) if "ego" in shape else 0
        seeds = meta.get("seeds", 0)
        if seeds:
            if not 0 <= seed_index < seeds:
                raise ValueError(f"seed index {seed_index} is out of range; {directory} holds {seeds} seed(s)")
            params = jax.tree.map(lambda x: x[seed_index], params)
        self.directory, self.rig, self.pixel_range, self.params = directory, rig, pixel_range, params
        self._act = jax.jit(lambda p, obs: pol.mode(network.apply(p, obs)))
        self._jnp = jnp
        self._lock = threading.Lock()
        self.policy_obs(np.zeros(self.image_shape, np.uint8))
        self.act_images(np.zeros(self.image_shape, np.uint8))  # compile before the first request
        if self.ego_dim:
            log.warning("%s was trained with an ego-state input (%d values); the release sends none, so it gets zeros",
                        directory, self.ego_dim)  # fmt: skip

    def policy_obs(self, images: np.ndarray) -> dict:
        """The policy's observation for uint8 images (C, H, W, 3) in the rig's order."""
        obs = {"image": self._jnp.asarray(images)}
        if self.ego_dim:
            obs["ego"] = self._jnp.zeros((self.ego_dim,), self._jnp.float32)
        return obs

    def images(self, arrays: dict) -> np.ndarray:
        """uint8 (C, H, W, 3) in the rig's camera order from the release's six arrays."""
        imgs = check_images(arrays, self.pixel_range)
        _, h, w, _ = self.image_shape
        return np.stack([resize(imgs[k], h, w) for k in self.keys])

    def act_images(self, images: np.ndarray) -> list:
        with self._lock:
            a = np.asarray(self._act(self.params, self.policy_obs(images)))
        return [int(a[0]), int(a[1]), FLAG]

    def act(self, arrays: dict) -> list:
        """[ax_index, ay_index, flag] for the release's six arrays (RequestError on bad ones)."""
        images = self.images(arrays)
        try:
            return self.act_images(images)
        except Exception as err:
            log.exception("policy failed")
            raise RequestError(500, f"policy failure: {type(err).__name__}: {err}") from None


async def _read_body(request, max_bytes: int) -> bytes:
    """The request body, at most `max_bytes` (+64 KiB of multipart framing); RequestError(413)
    past it, after draining what the client sends (so it reads the answer) up to 4x the limit."""
    limit = max_bytes + 65536
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 4 * limit:
        raise RequestError(413, f"request body is {declared} bytes; the limit is {max_bytes} bytes")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n <= limit:
            chunks.append(chunk)
        elif n > 4 * limit:
            break
    if n > limit:
        raise RequestError(413, f"request body is over {max_bytes} bytes (the limit)")
    return b"".join(chunks)


async def _form_file(request, body: bytes) -> bytes:
    """Contents of the multipart field `obs` of `body`."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise RequestError(400, f"expected a multipart/form-data upload with field 'obs', got content-type {ctype!r}")

    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream()).parse()
    except (MultiPartException, ValueError, KeyError) as err:
        raise RequestError(400, f"malformed multipart upload ({err})") from None
    try:
        field = form.get("obs")
        if field is None:
            raise RequestError(400, f"no field 'obs' in the upload (fields: {list(form.keys())})")
        if not isinstance(field, UploadFile):
            return field.encode()
        return await field.read()
    finally:
        await form.close()


def create_app(server: PolicyServer, max_bytes: int = MAX_UPLOAD_BYTES):
    """The FastAPI app of the release's endpoints around `server`."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="reconrl policy server", description="the ReconDreamer-RL release's policy protocol")

    async def answer(request: Request, decode) -> JSONResponse:
        try:
            body = await _read_body(request, max_bytes)
            arrays = await decode(request, body)
            action = await run_in_threadpool(server.act, arrays)
        except RequestError as err:
            if err.status >= 500:
                log.error("%s %s: %s", request.method, request.url.path, err.detail)
            return JSONResponse({"detail": err.detail}, status_code=err.status)
        except Exception as err:  # anything unforeseen: 500, and the server stays up
            log.exception("unexpected error")
            return JSONResponse({"detail": f"internal server error: {type(err).__name__}: {err}"}, status_code=500)
        return JSONResponse({"action": action})

    async def from_file(request, body):
        contents = await _form_file(request, body)
        return await run_in_threadpool(load_npz, contents, max_bytes)

    async def from_json(request, body):
        if not body:
            raise RequestError(400, "empty body; expected a JSON object of six images")
        return await run_in_threadpool(parse_json, body)

    @app.post("/get_action/file")
    async def get_action_file(request: Request):
        return await answer(request, from_file)

    @app.post("/get_action/json")
    async def get_action_json(request: Request):
        return await answer(request, from_json)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


class ThreadedServer:
    """uvicorn serving `app` on a socket bound here, in a background thread (tests, benchmarks).

    with ThreadedServer(app) as srv:   # srv.url == "http://127.0.0.1:<free port>"
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        import time

        self.thread.start()
        for _ in range(200):  # bounded: 10 s
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start within 10 s")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
