"""`reconrl serve`: a camera policy behind the official release's HTTP policy protocol.

reconrl serve --checkpoint runs/NAME [--host 127.0.0.1] [--port 8001]
reconrl serve --init-config configs/camera.yaml --set render.rig=nuscenes6   # untrained: protocol checks
reconrl serve --checkpoint DIR --bench 20 [--bench-size 450x800] [--json out.json]   # requests/s, latency
"""

from __future__ import annotations

import os
import time


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a camera policy over the release's HTTP protocol (FastAPI + uvicorn)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a policy directory, or a run directory (serves policy_rl/, else policy_il/)")
    src.add_argument("--init-config", help="serve an untrained (randomly initialised) camera policy of this config "
                                           "(protocol and throughput checks; with --set key=value overrides)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override of --init-config")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8001, help="port (default %(default)s, the release's)")
    p.add_argument(
        "--seed-index", type=int, default=0, help="which seed of a multi-seed policy file answers (default %(default)s)"
    )
    p.add_argument(
        "--pixel-range",
        default="auto",
        choices=("auto", "1", "255"),
        help="scale of the incoming float pixels: [0, 1], [0, 255], or auto (default %(default)s)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=200.0, help="larger uploads get 413 (default %(default)s, the release's)"
    )
    p.add_argument(
        "--bench",
        type=int,
        default=0,
        metavar="N",
        help="instead of serving: time N release-format requests against this server on 127.0.0.1 and exit",
    )
    p.add_argument(
        "--bench-size",
        default="450x800",
        help="HEIGHTxWIDTH of the six benchmark images (default %(default)s, the release's)",
    )
    p.add_argument("--json", default=None, help="--bench: write the numbers to this JSON file")
    p.set_defaults(run=run)


def policy_dir(path: str) -> str:
    """`path` itself when it holds policy.json, else its policy_rl/ or policy_il/."""
    from agents.checkpoint import POLICY_META

    for d in (path, os.path.join(path, "policy_rl"), os.path.join(path, "policy_il")):
        if os.path.exists(os.path.join(d, POLICY_META)):
            return d
    raise FileNotFoundError(f"{path} holds no policy ({POLICY_META}, policy_rl/ or policy_il/)")


def untrained_policy(config: str, overrides: list, directory: str) -> str:
    """Write a randomly initialised one-seed camera policy of `config` to `directory`."""
    import jax

    from agents.camera_obs import obs_shape
    from agents.camera_trainer import camera_policy_meta
    from agents.checkpoint import save_policy
    from agents.networks import init_params
    from agents.train_config import load_config

    cfg = load_config(config, overrides)
    if cfg.env.obs != "camera":
        raise ValueError(f"--init-config {config}: env.obs is {cfg.env.obs!r}; only camera policies can be served")
    shape = obs_shape(cfg.render, cfg.env, 0, False)
    params = init_params(cfg.network, cfg.env, shape, jax.random.split(jax.random.PRNGKey(cfg.seed), 1))
    save_policy(directory, params, camera_policy_meta(cfg, shape, "untrained") | {"seeds": 1})
    return directory


def bench(server, n: int, size: str, max_bytes: int) -> dict:
    """Requests/s and latency of `server` behind the app on 127.0.0.1 (client in this process)."""
    import threading

    import numpy as np

    from agents.remote_policy import RemotePolicy, encode_npz, multipart, parse_size
    from agents.serve import RELEASE_KEYS, ThreadedServer, create_app, load_npz

    h, w = parse_size(size)
    rng = np.random.default_rng(0)
    # float32 noise in [0, 1): incompressible, the largest upload six h x w images make
    images = {k: rng.random((h, w, 3), dtype=np.float32) for k in RELEASE_KEYS}
    t = time.perf_counter()
    payload = encode_npz(images)
    encode_s = time.perf_counter() - t
    body, ctype = multipart("obs", "obs.npz", payload)
    stages = {"decode_npz_s": [], "check_resize_s": [], "policy_s": []}
    for _ in range(3):  # each stage alone, best of three
        t = time.perf_counter()
        arrays = load_npz(payload, max_bytes)
        t1 = time.perf_counter()
        imgs = server.images(arrays)
        t2 = time.perf_counter()
        server.act_images(imgs)
        for k, v in zip(stages, (t1 - t, t2 - t1, time.perf_counter() - t2)):
            stages[k].append(v)
    stages = {k: min(v) for k, v in stages.items()}
    out = {"images": f"6 x {h}x{w}x3 float32", "upload_bytes": len(body), "client_encode_s": encode_s, **stages}
    with ThreadedServer(create_app(server, max_bytes)) as srv:
        client = RemotePolicy(srv.url, timeout=300, retries=0)
        for _ in range(2):  # warm-up
            client._request("/get_action/file", body, ctype)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            client.parse_action(client._request("/get_action/file", body, ctype))
            lat.append(time.perf_counter() - t)
        out.update(requests=n, latency_mean_s=float(np.mean(lat)), latency_p50_s=float(np.median(lat)),
                   latency_max_s=float(np.max(lat)), requests_per_s=n / float(np.sum(lat)))  # fmt: skip
        # two clients at once: the server overlaps one request's I/O with another's compute
        t = time.perf_counter()
        threads = [threading.Thread(target=lambda: [client._request("/get_action/file", body, ctype) for _ in range(max(n // 2, 1))])
                   for _ in range(2)]  # fmt: skip
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        out["requests_per_s_2_clients"] = 2 * max(n // 2, 1) / (time.perf_counter() - t)
    return out


def run(args) -> int:
    if not 0 < args.port < 65536:
        raise ValueError(f"--port is {args.port}; allowed: 1 to 65535")
    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb is {args.max_upload_mb}; allowed: > 0")
    if args.bench < 0:
        raise ValueError(f"--bench is {args.bench}; allowed: >= 0")
    if args.set and not args.init_config:
        raise ValueError("--set overrides --init-config; give --init-config CONFIG")
    try:
        import uvicorn
        from fastapi import FastAPI  # noqa: F401
    except ModuleNotFoundError as err:
        raise ValueError(f"reconrl serve needs {err.name}: pip install -e '.[serve]'") from None
    import logging
    import tempfile

    from jaxsim.io_utils import check_output_file

    if args.json:
        check_output_file(args.json, "--json")

    from agents.serve import PolicyServer, create_app

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("reconrl.serve").setLevel(logging.INFO)
    max_bytes = int(args.max_upload_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="reconrl-untrained-") as tmp:
        if args.init_config:
            directory = untrained_policy(args.init_config, args.set, tmp)
        else:
            directory = policy_dir(args.checkpoint)
        server = PolicyServer(directory, seed_index=args.seed_index, pixel_range=args.pixel_range)
        c, h, w, _ = server.image_shape
        what = f"{directory if args.checkpoint else 'an untrained policy of ' + args.init_config} ({server.rig.rig} rig, " \
               f"{c} x {h}x{w} images, ego input {'zeros' if server.ego_dim else 'none'})"  # fmt: skip
        if args.bench:
            from jaxsim.io_utils import write_json

            out = bench(server, args.bench, args.bench_size, max_bytes)
            print(f"benchmark of {what}:")
            for k, v in out.items():
                print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
            if args.json:
                write_json(args.json, out)
                print(f"wrote {args.json}")
            return 0
        print(f"serving {what} on http://{args.host}:{args.port}", flush=True)
        uvicorn.run(create_app(server, max_bytes=max_bytes), host=args.host, port=args.port, log_level="warning")
    return 0
