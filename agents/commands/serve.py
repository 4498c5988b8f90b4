"""`reconrl serve`: a camera policy behind the official release's HTTP policy protocol."""
from __future__ import annotations

import os


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a camera policy over the release's HTTP protocol (FastAPI + uvicorn)")
    p.add_argument("--checkpoint", required=True, help="a policy directory, or a run directory (serves policy_rl/, else policy_il/)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8001, help="port (default %(default)s, the release's)")
    p.add_argument("--seed-index", type=int, default=0, help="which seed of a multi-seed policy file answers (default %(default)s)")
    p.add_argument("--pixel-range", default="auto", choices=("auto", "1", "255"),
                   help="scale of the incoming float pixels: [0, 1], [0, 255], or auto (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="larger uploads get 413 (default %(default)s, the release's)")
    p.set_defaults(run=run)


def policy_dir(path: str) -> str:
    """`path` itself when it holds policy.json, else its policy_rl/ or policy_il/."""
    from agents.checkpoint import POLICY_META

    for d in (path, os.path.join(path, "policy_rl"), os.path.join(path, "policy_il")):
        if os.path.exists(os.path.join(d, POLICY_META)):
            return d
    raise FileNotFoundError(f"{path} holds no policy ({POLICY_META}, policy_rl/ or policy_il/)")


def run(args) -> int:
    if not 0 < args.port < 65536:
        raise ValueError(f"--port is {args.port}; allowed: 1 to 65535")
    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb is {args.max_upload_mb}; allowed: > 0")
    try:
        import uvicorn
        from fastapi import FastAPI  # noqa: F401
    except ModuleNotFoundError as err:
        raise ValueError(f"reconrl serve needs {err.name}: pip install -e '.[serve]'") from None
    import logging

    from agents.serve import PolicyServer, create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    directory = policy_dir(args.checkpoint)
    server = PolicyServer(directory, seed_index=args.seed_index, pixel_range=args.pixel_range)
    app = create_app(server, max_bytes=int(args.max_upload_mb * 1024 * 1024))
    c, h, w, _ = server.image_shape
    print(f"serving {directory} ({server.rig.rig} rig, {c} x {h}x{w} images, ego input "
          f"{'zeros' if server.ego_dim else 'none'}) on http://{args.host}:{args.port}", flush=True)  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
