"""`proctor mlflow-ui`: MLflow's own web UI on 127.0.0.1 over the runs Proctor logged, until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time

NAME = "mlflow-ui"
ORDER = 52


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="start MLflow's web UI on 127.0.0.1 over the same runs; Ctrl-C stops it",
        description="Start `mlflow server` on 127.0.0.1 over the tracking store Proctor uses (MLFLOW_TRACKING_URI, "
                    "else mlflow.db in the current folder), print its URL when it is ready, and stop it on Ctrl-C. "
                    "If MLFLOW_TRACKING_URI is already an http(s) server, print that URL instead.")
    parser.add_argument("--port", "-p", type=int, help="port (default: 5000 if free, else any free port)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.mlflow_server import is_remote, plan_server
    from core.safety import mask_url
    from core.tracking import configure_mlflow

    uri = configure_mlflow()
    shown_uri = mask_url(uri)  # credentials in MLFLOW_TRACKING_URI are never printed
    if is_remote(uri):
        print(f"MLflow UI is the tracking server at {shown_uri}")
        return 0
    server = plan_server(args.port)
    print(f"Starting the MLflow UI on {server.url} over {shown_uri}… (log: {server.log_path})", flush=True)
    server.start()
    try:
        url = server.wait_until_ready()
        print(f"MLflow UI ready at {url} (after {server.ready_after_s:.0f} s). Ctrl-C stops it.", flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"proctor: error: the MLflow server stopped by itself (see {server.log_path})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping the MLflow UI…", flush=True)
        server.stop()
        print("MLflow UI stopped.")
        return 0
    finally:
        server.stop()
