"""The official release's HTTP policy protocol, both directions, on 127.0.0.1 only:
`reconrl eval --policy-url` drives a minimal release-style server written here, and
`reconrl serve` answers a client posting exactly what the release's client posts, with
the local policy's actions, 4xx for every kind of bad request and the server still up."""

import functools
import io
import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
requests = pytest.importorskip("requests")

from agents import policies as pol  # noqa: E402
from agents.camera_obs import obs_shape  # noqa: E402
from agents.camera_trainer import camera_policy_meta  # noqa: E402
from agents.checkpoint import load_policy, save_policy  # noqa: E402
from agents.networks import init_params  # noqa: E402
from agents.serve import RELEASE_KEYS, ThreadedServer  # noqa: E402
from agents.train_config import config_from_dict  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
H, W = 16, 24
EVAL_ARGS = ["--num", "1", "--render-size", f"{H}x{W}", "--render-backend", "reference", "--render-gaussians", "600",
             "--render-actor-gaussians", "32", "--no-buildings", "--max-steps", "3", "--timeout", "5"]  # fmt: skip


# ------------------------------------------------------------------ a release-style policy server
def release_style_app(log: dict):
    """The release's endpoint shapes, answering a fixed action; `log["mode"]` makes it misbehave."""
    from fastapi import FastAPI, File, HTTPException, UploadFile
    from fastapi.responses import JSONResponse, PlainTextResponse

    app = FastAPI()

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/get_action/file")
    async def get_action_file(obs: UploadFile = File(...)):
        log["requests"] += 1
        npz = np.load(io.BytesIO(await obs.read()), allow_pickle=False)
        log["shapes"].append({k: (npz[k].shape, str(npz[k].dtype)) for k in npz.files})
        mode = log["mode"]
        if mode == "500":
            raise HTTPException(status_code=500, detail="policy.get_action error: boom")
        if mode == "text":
            return PlainTextResponse("hello")
        if mode == "range":
            return JSONResponse({"action": [99.0, 3.0, 1.0]})
        return JSONResponse({"action": [30.0, 40.0, 1.0]})  # the release answers List[float]

    return app


def test_eval_drives_a_release_style_server(tmp_path):
    from agents.cli import main
    from agents.remote_policy import RemotePolicy, RemotePolicyError

    log = {"requests": 0, "shapes": [], "mode": "ok"}
    with ThreadedServer(release_style_app(log)) as srv:
        out = tmp_path / "remote.json"
        assert main(["eval", "--policy-url", srv.url, *EVAL_ARGS, "--json", str(out)]) == 0
        rows = json.loads(out.read_text())["rows"]
        assert list(rows) == ["remote [log-replay]"] and "CR" in rows["remote [log-replay]"]
        assert 1 <= log["requests"] <= 3
        assert all(s == {k: ((H, W, 3), "float32") for k in RELEASE_KEYS} for s in log["shapes"])

        # nonsense and failing answers: a clear error after a bounded number of attempts
        for mode, want, attempts in (
            ("text", "not JSON", 1),
            ("range", "outside 0..60", 1),
            ("500", "after 3 attempt", 3),
        ):
            log.update(mode=mode, requests=0)
            with pytest.raises(RemotePolicyError, match=want):
                RemotePolicy(srv.url, timeout=5, retries=2, backoff=0.01).act(
                    {k: np.zeros((H, W, 3), np.uint8) for k in RELEASE_KEYS}
                )
            assert log["requests"] == attempts

    # an unreachable server: one error line and exit code 2, no endless retries
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    start = time.perf_counter()
    assert main(["eval", "--policy-url", dead, *EVAL_ARGS, "--retries", "1"]) == 2
    assert time.perf_counter() - start < 20


# ------------------------------------------------------------------ `reconrl serve`
@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """A camera policy on the nuScenes rig at 16x24 with an ego input (one seed)."""
    cfg = config_from_dict({"env": {"obs": "camera", "substeps": 5}, "network": {"encoder": "impala", "hidden": 16, "channels": [4]},
                            "render": {"rig": "nuscenes6", "width": W, "height": H, "backend": "reference"}})  # fmt: skip
    shape = obs_shape(cfg.render, cfg.env, 0, False)
    params = init_params(cfg.network, cfg.env, shape, jax.random.split(jax.random.PRNGKey(3), 1))
    # larger output weights than the init's 0.01 so that different images give different actions
    params = jax.tree_util.tree_map_with_path(lambda p, x: x * 300 if "actor" in jax.tree_util.keystr(p) else x, params)
    d = str(tmp_path_factory.mktemp("policy"))
    save_policy(d, params, camera_policy_meta(cfg, shape, "il"))
    return d


@pytest.fixture(scope="module")
def served(tiny_policy):
    """`reconrl serve` as a user starts it, in its own process, with a 0.2 MB upload limit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "agents.cli",
        "serve",
        "--checkpoint",
        tiny_policy,
        "--port",
        str(port),
        "--max-upload-mb",
        "0.2",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # bounded: 120 s on a busy machine
            if proc.poll() is not None:
                pytest.fail(f"reconrl serve exited {proc.returncode}: {proc.stdout.read()}")
            try:
                if requests.get(url + "/healthz", timeout=2).json() == {"status": "ok"}:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            pytest.fail("reconrl serve did not answer /healthz within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def release_post(url: str, observation: dict):
    """Exactly what the release's client sends (send_observation_until_success_np), once."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **observation)
    buf.seek(0)
    return requests.post(
        url + "/get_action/file", files={"obs": ("obs.npz", buf, "application/octet-stream")}, timeout=30
    )


def release_images(seed: int, h: int = H, w: int = W) -> dict:
    rng = np.random.default_rng(seed)
    return {k: np.rint(rng.uniform(0, 255, (h, w, 3))).astype(np.float32) for k in RELEASE_KEYS}


@functools.lru_cache(maxsize=2)
def _loaded(policy_dir: str):
    network, params, meta, _ = load_policy(policy_dir)
    return network, jax.tree.map(lambda x: x[0], params), meta


def local_action(policy_dir: str, obs: dict) -> list:
    """The policy's greedy anchors computed here, images in the nuScenes rig's order, ego zeros."""
    network, params, meta = _loaded(policy_dir)
    order = ["front", "front_right", "front_left", "back", "back_left", "back_right"]  # NUSCENES6
    image = np.stack([obs[k].astype(np.uint8) for k in order])
    a = pol.mode(network.apply(params, {"image": image, "ego": np.zeros(meta["obs_shape"]["ego"], np.float32)}))
    return [int(a[0]), int(a[1]), 1]


def test_serve_answers_the_release_client_with_the_local_policy_actions(served, tiny_policy):
    answers = []
    for seed in range(4):
        obs = release_images(seed)
        r = release_post(served, obs)
        assert r.status_code == 200, r.text
        assert r.json()["action"] == local_action(tiny_policy, obs)
        answers.append(r.json()["action"])
        # the same images as [0, 1] floats, and through /get_action/json as nested lists
        assert release_post(served, {k: v / 255.0 for k, v in obs.items()}).json()["action"] == answers[-1]
        rj = requests.post(served + "/get_action/json", json={k: v.tolist() for k, v in obs.items()}, timeout=30)
        assert rj.status_code == 200 and rj.json()["action"] == answers[-1]
    assert len({tuple(a) for a in answers}) > 1  # the answer depends on the images
    # other sizes are resized to the policy's (the release's cameras are 450x800)
    big = {k: np.full((2 * H, 2 * W, 3), 90.0, np.float32) for k in RELEASE_KEYS}
    assert release_post(served, big).json()["action"] == local_action(
        tiny_policy, {k: v[::2, ::2] for k, v in big.items()}
    )


def test_serve_refuses_bad_requests_and_stays_up(served, tiny_policy):
    good = release_images(7)
    want = local_action(tiny_policy, good)

    def npz(**arrays):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def upload(data, field="obs"):
        return requests.post(
            served + "/get_action/file", files={field: ("obs.npz", data, "application/octet-stream")}, timeout=30
        )

    without = {k: v for k, v in good.items() if k != "back"}
    nan = dict(good, front=np.where(np.arange(W)[None, :, None] == 3, np.nan, good["front"]).astype(np.float32))
    cases = [
        (upload(b""), 400, "empty"),
        (upload(b"certainly not an npz"), 400, "npz"),
        (upload(npz(**dict(good, back=np.array([{"a": 1}], dtype=object)))), 400, "'back'"),
        (upload(npz(**without)), 400, "missing key(s) ['back']"),
        (upload(npz(**dict(good, lidar=good["back"]))), 400, "unexpected key(s) ['lidar']"),
        (upload(npz(**good), field="image"), 400, "no field 'obs'"),
        (
            requests.post(
                served + "/get_action/file",
                data=b"--x\r\ngarbage",
                headers={"Content-Type": "multipart/form-data; boundary=x"},
                timeout=30,
            ),
            400,
            "",
        ),
        (upload(npz(**dict(good, front=good["front"][..., 0]))), 422, "'front'"),
        (upload(npz(**dict(good, front=good["front"][:8]))), 422, "'front'"),
        (upload(npz(**dict(good, front=good["front"].astype(np.int32)))), 422, "dtype int32"),
        (upload(npz(**nan)), 422, "NaN"),
        (upload(npz(**dict(good, back=good["back"] * 10))), 422, "'back'"),
        (
            upload(
                npz(**{k: np.random.default_rng(1).uniform(0, 255, (128, 192, 3)).astype(np.float32) for k in good})
            ),
            413,
            "limit",
        ),  # > 0.2 MB
        (requests.post(served + "/get_action/json", data=b"{not json", timeout=30), 400, "JSON"),
        (
            requests.post(served + "/get_action/json", json={k: v.tolist() for k, v in without.items()}, timeout=30),
            400,
            "'back'",
        ),
        (
            requests.post(
                served + "/get_action/json",
                json=dict({k: v.tolist() for k, v in good.items()}, front=[[1, 2], [3]]),
                timeout=30,
            ),
            422,
            "'front'",
        ),
    ]
    for i, (r, status, text) in enumerate(cases):
        assert r.status_code == status, (i, r.status_code, r.text)
        assert text in r.json()["detail"], (i, r.text)
    assert requests.get(served + "/healthz", timeout=5).json() == {"status": "ok"}
    r = release_post(served, good)
    assert r.status_code == 200 and r.json()["action"] == want


def test_policy_failure_is_500_and_the_server_stays_up(tiny_policy):
    from agents.serve import PolicyServer, create_app

    server = PolicyServer(tiny_policy)
    real = server._act
    with ThreadedServer(create_app(server)) as srv:
        server._act = lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
        r = release_post(srv.url, release_images(0))
        assert r.status_code == 500 and "boom" in r.json()["detail"]
        server._act = real
        assert release_post(srv.url, release_images(0)).json()["action"] == local_action(tiny_policy, release_images(0))


def test_serve_bench_of_an_untrained_policy(tmp_path):
    from agents.cli import main

    out = tmp_path / "bench.json"
    smoke = os.path.join(ROOT, "configs", "camera_smoke.yaml")
    assert main(["serve", "--init-config", smoke, "--set", "render.rig=nuscenes6", "--bench", "2", "--bench-size", "32x48",
                 "--json", str(out)]) == 0  # fmt: skip
    got = json.loads(out.read_text())
    assert got["requests"] == 2 and got["requests_per_s"] > 0 and got["images"] == "6 x 32x48x3 float32"
    assert main(["serve", "--checkpoint", str(tmp_path / "nowhere")]) == 2  # one error line, no traceback
    # stacked frames need per-client history the stateless protocol does not have: refused by name
    rig = ["--set", "render.rig=nuscenes6"]
    assert main(["serve", "--init-config", smoke, *rig, "--set", "render.frames=2", "--bench", "1"]) == 2
