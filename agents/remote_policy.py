"""Drive a policy served over the official release's HTTP protocol (`reconrl eval --policy-url`).

Our simulator renders the nuScenes six-camera rig (render_bridge, at a configurable
size), each live env's six images go out as the release's client sends them (multipart
field `obs`: a compressed .npz of float32 (H, W, 3) images under back_left, front_left,
front, front_right, back_right, back; pixel values 0..255 by default, or 0..1), and the
answer {"action": [ax_index, ay_index, flag]} is stepped as RAD anchor indices (the flag
is read and ignored). Unlike the release's client, which retries forever, every request
has a timeout and a bounded number of retries (connection errors, timeouts and 5xx
answers; a 4xx is the server refusing our observation and is reported at once), and an
answer that is not such an action stops the evaluation with the answer quoted.

    client = RemotePolicy("http://127.0.0.1:8001", timeout=30, retries=3)
    client.check_health()
    ax, ay = client.act({"front": img, ...})        # uint8 (H, W, 3) images
"""

from __future__ import annotations

import http.client
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jax
import jax.numpy as jnp
import numpy as np

from agents.serve import RELEASE_KEYS, release_key


class RemotePolicyError(ValueError):
    """The policy server cannot be reached, refuses our observations or answers nonsense."""


def base_url(url: str) -> str:
    """http://HOST:PORT (a trailing /get_action/file, the release's SERVER_URL, is accepted)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RemotePolicyError(f"--policy-url is {url!r}; expected http://HOST:PORT")
    path = parsed.path.rstrip("/")
    for suffix in ("/get_action/file", "/get_action/json", "/healthz"):
        path = path.removesuffix(suffix)
    return f"{parsed.scheme}://{parsed.netloc}{path}"


def encode_npz(images: dict) -> bytes:
    """The release's upload: np.savez_compressed of the float32 images."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v, np.float32) for k, v in images.items()})
    return buf.getvalue()


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload of one file field."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class RemotePolicy:
    """Client of a release-style policy server (see module docstring)."""

    def __init__(self, url: str, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 pixel_range: str = "255", num_actions: tuple = (61, 61)):  # fmt: skip
        if not timeout > 0:
            raise RemotePolicyError(f"--timeout is {timeout}; allowed: > 0 seconds")
        if not 0 <= retries <= 100:
            raise RemotePolicyError(f"--retries is {retries}; allowed: 0 to 100")
        if pixel_range not in ("1", "255"):
            raise RemotePolicyError(f"--pixel-range is {pixel_range!r}; allowed: 1, 255")
        self.url, self.timeout, self.retries, self.backoff = base_url(url), timeout, retries, backoff
        self.scale = 1.0 if pixel_range == "255" else 1.0 / 255.0
        self.num_actions = tuple(num_actions)
        self.requests = 0

    def _send(self, path: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def _request(self, path: str, body: bytes | None = None, ctype: str | None = None) -> bytes:
        """The 200 answer's body; retries connection errors, timeouts and 5xx at most `retries` times."""
        last = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * attempt)
            self.requests += 1
            try:
                status, data = self._send(path, body, ctype)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", err)
                last = f"cannot reach it ({type(reason).__name__}: {reason})"
                continue
            if status == 200:
                return data
            detail = data[:300].decode("utf-8", "replace")
            if status < 500:
                raise RemotePolicyError(f"policy server {self.url}{path} refused the request: HTTP {status}: {detail}")
            last = f"HTTP {status}: {detail}"
        raise RemotePolicyError(f"policy server {self.url}{path} gave no answer after {self.retries + 1} attempt(s) "
                                f"(timeout {self.timeout:g} s each): {last}; is `reconrl serve` (or the release's policy) running there?")  # fmt: skip

    def check_health(self) -> None:
        """GET /healthz must answer {"status": "ok"}."""
        data = self._request("/healthz")
        try:
            ok = json.loads(data).get("status") == "ok"
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise RemotePolicyError(f'policy server {self.url}/healthz answered {data[:200]!r}, not {{"status": "ok"}}')

    def act(self, images: dict) -> tuple[int, int]:
        """Anchor indices (lateral, longitudinal) for six uint8 (H, W, 3) images keyed as the release."""
        payload = {k: np.asarray(images[k], np.float32) * np.float32(self.scale) for k in RELEASE_KEYS}
        body, ctype = multipart("obs", "obs.npz", encode_npz(payload))
        return self.parse_action(self._request("/get_action/file", body, ctype))

    def parse_action(self, data: bytes) -> tuple[int, int]:
        def nonsense(why):
            return RemotePolicyError(f"policy server {self.url} answered nonsense ({why}): {data[:200]!r}; "
                                     "expected {\"action\": [ax_index, ay_index, flag]}")  # fmt: skip

        try:
            answer = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise nonsense("not JSON") from None
        action = answer.get("action") if isinstance(answer, dict) else None
        if not isinstance(action, list) or not 2 <= len(action) <= 3:
            raise nonsense("no 'action' list of 2 or 3 numbers")
        out = []
        for name, v, n in zip(("ax_index", "ay_index"), action[:2], self.num_actions):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v != round(v):
                raise nonsense(f"{name} {v!r} is not an integer")
            if not 0 <= v < n:
                raise nonsense(f"{name} {v!r} is outside 0..{n - 1}")
            out.append(int(v))
        return out[0], out[1]


def _no_apply(params, obs):  # the compiled rollout's `act` is never called for a remote policy
    raise NotImplementedError


def rollout_remote(env, camera, client: RemotePolicy, env_params, scenario_ids, key) -> dict:
    """Per-episode metrics {name: (1, E)} of the remote policy on E episodes (`env_params`
    batched over them), shaped like `agents.camera_eval.rollout_camera`'s."""
    from agents.camera_eval import _compiled
    from agents.camera_obs import commit
    from jaxsim import metrics as met

    ids = jnp.asarray(scenario_ids, jnp.int32)
    e = int(ids.shape[0])
    steps = -(-(env_params.bank.num_steps - 1) // env.config.substeps)
    if env.config.max_steps:
        steps = min(steps, env.config.max_steps)
    reset, _, _, step = _compiled(env, _no_apply, True, e, camera.rig, False, False, None)
    keys = commit(jax.random.split(key, 1))
    vec, state, inputs = reset(keys, env_params, ids)
    done = commit(jnp.zeros((1, e), bool))
    names = [release_key(s.name) for s in camera.rig.specs]
    action = np.zeros((1, e, 2), np.int32)
    for t in range(steps):
        live = ~np.asarray(done)[0]
        if not live.any():
            break
        images = np.asarray(camera.render(inputs, n_lead=2))[0]  # (E, C, H, W, 3) uint8
        for i in np.flatnonzero(live):
            action[0, i] = client.act({k: images[i, c] for c, k in enumerate(names)})
        k2 = jax.vmap(lambda kk: jax.random.fold_in(kk, t + 100_003))(keys)
        state, vec, done, inputs = step(k2, state, vec, done, commit(jnp.asarray(action)), env_params)
    return jax.tree.map(np.asarray, jax.vmap(jax.vmap(met.finalize))(state.metrics))


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--render-size is {text!r}; expected HEIGHTxWIDTH, e.g. 450x800 (the release's)") from None
    return h, w


def evaluate_remote(args, bank) -> dict:
    """RAD rows {"remote [<condition>]": metrics} of the policy at `args.policy_url`."""
    from agents.camera_obs import Camera
    from agents.eval_learned import evaluate_suite, suite_behaviours
    from agents.train_config import RenderConfig
    from jaxsim.env import DrivingEnv, EnvConfig

    h, w = parse_size(args.render_size)
    if args.render_actor_gaussians < 32:  # fewer cannot tile a vehicle's six boxes (the world builder would loop)
        raise ValueError(f"--render-actor-gaussians is {args.render_actor_gaussians}; allowed: >= 32")
    render = RenderConfig(backend=args.render_backend, rig="nuscenes6", width=w, height=h, gaussians=args.render_gaussians,
                          actor_gaussians=args.render_actor_gaussians, buildings=not args.no_buildings)  # fmt: skip
    env = DrivingEnv(
        EnvConfig(action_space="discrete", obs="none", substeps=args.substeps or 5, max_steps=args.max_steps)
    )
    behaviours = suite_behaviours(args.daa)
    client = RemotePolicy(args.policy_url, timeout=args.timeout, retries=args.retries, pixel_range=args.pixel_range,
                          num_actions=(env.discrete_spec.num_lat, env.discrete_spec.num_lon))  # fmt: skip
    client.check_health()  # before building the scenes: an unreachable server fails fast
    camera = Camera.build(render, bank)

    def rollout(env_p, ids, k):
        return rollout_remote(env, camera, client, env_p, ids, k)

    rows = evaluate_suite(rollout, env.default_params(bank), behaviours, jax.random.PRNGKey(args.eval_seed))
    print(f"{client.requests} request(s) to {client.url}")
    return {f"remote [{cond}]": r["mean"] for cond, r in rows.items()}
