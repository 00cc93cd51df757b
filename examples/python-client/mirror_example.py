#!/usr/bin/env python3
"""Pushes an image to tessera, annotates it, runs a plugin on it, downloads the results, and
keeps a local mirror in step through the change feed, pushing the mirror's own annotations back.

    python3 mirror_example.py --url http://127.0.0.1:8080 --token TOKEN

The server stays the one point of truth: the script only ever changes things through the API
and learns what changed from `/api/changes`. It exits non-zero if any step does not behave as
documented.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tessera_client import Client, TesseraError

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "data" / "skimage_ihc.png"


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"unexpected: {what}")


def square(x: float, y: float, side: float) -> list:
    return [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]]


def progress_bar(event: dict) -> None:
    done, total = event.get("done", 0), max(event.get("total", 1), 1)
    filled = int(30 * done / total)
    print(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end="", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--token", required=True)
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--project", default="python-mirror")
    parser.add_argument("--plugin", default="nuclei-detect")
    parser.add_argument("--out", type=Path, default=Path("mirror-out"))
    args = parser.parse_args()

    client = Client(args.url, args.token)
    me = client.me()
    print(f"signed in as {me['name']} ({me['role']}, teams {', '.join(me['teams'])})")

    # The mirror starts from the feed's current end; everything after is what we cause.
    _, cursor = client.all_changes()

    project = client.project_named(args.project) or client.create_project(
        args.project, me["teams"][0]
    )
    pid = project["id"]
    print(f"project {project['name']} ({pid}, {project['access']})")

    image = client.upload_image(pid, args.image)
    again = client.upload_image(pid, args.image)
    check(again["id"] == image["id"], "the same file uploaded twice got two ids")
    print(f"uploaded {image['name']}: {image['width']}x{image['height']} {image['format']}, "
          f"id {image['id']}, digest {image['digest'][:12]}…")

    original = client.download_image(pid, image["id"], args.out / image["name"])
    check(original.read_bytes() == args.image.read_bytes(), "the original came back different")

    manual = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": square(10, 10, 40)},
                "properties": {"label": "region of interest"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [400, 400]},
                "properties": {"label": "artefact"},
            },
        ],
    }
    client.put_annotations(pid, image["id"], manual)
    near = client.annotations(pid, image["id"], bbox=(0, 0, 100, 100))
    labels = [f["properties"]["label"] for f in near["features"]]
    check(labels == ["region of interest"], f"bbox query answered {labels}")
    print("posted 2 manual annotations; a bbox query near the origin finds 1")

    try:
        client.put_annotations(pid, image["id"], {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0]]]}}
        ]})
        raise SystemExit("unexpected: a one-point polygon was accepted")
    except TesseraError as e:
        check(e.status == 400, f"a bad polygon answered {e.status}")
        print(f"a malformed polygon is refused: {e.message}")

    plugins = {p["id"]: p for p in client.plugins()}
    check(args.plugin in plugins, f"plugin {args.plugin} is not installed: {sorted(plugins)}")
    run = client.start_run(pid, args.plugin, image=image["id"])
    print(f"run {run['id']}: {args.plugin} {plugins[args.plugin]['version']}")
    run = client.wait_run(pid, run["id"], on_progress=progress_bar)
    print()
    check(run["state"] == "done", f"the run ended {run['state']}: {run.get('error')}")

    results = client.results(pid, image=image["id"])
    check(len(results) >= 1, "the run left no result")
    result = next(r for r in results if r["id"] in run["results"])
    path = client.download_result(pid, result["id"], args.out / f"{result['id']}.geojson")
    nuclei = json.loads(path.read_text())["features"]
    check(len(nuclei) == result["annotation_count"], "the result's count and file disagree")
    measurements = {m["name"]: m["value"] for m in result["measurements"]}
    print(f"result {result['id']}: {len(nuclei)} features, measurements {measurements}, "
          f"plugin digest {result['plugin_digest'][:12]}…, input {result['image_digest'][:12]}…")

    # The mirror catches up: what happened since it started, in order.
    changes, cursor = client.all_changes(cursor)
    seen = {(c["kind"], c["op"]) for c in changes}
    for expected in [("image", "created"), ("annotations", "created"), ("result", "created")]:
        check(expected in seen, f"the change feed lacks {expected}: {sorted(seen)}")
    print(f"change feed: {len(changes)} changes since the mirror started")

    # The mirror's own work goes back to the one point of truth, under its own source.
    reviewed = {
        "type": "FeatureCollection",
        "features": [
            dict(feature, properties={**feature.get("properties", {}), "reviewed": True})
            for feature in nuclei[:10]
        ],
    }
    client.put_annotations(pid, image["id"], reviewed, source="mirror")
    changes, cursor = client.all_changes(cursor)
    pushed = [c for c in changes if c["kind"] == "annotations" and c.get("source") == "mirror"]
    check(len(pushed) == 1, f"the pushed annotations are not in the feed: {changes}")
    back = client.annotations(pid, image["id"], source="mirror")
    check(len(back["features"]) == len(reviewed["features"]), "pushed annotations were lost")
    print(f"pushed {len(back['features'])} reviewed nuclei back as source `mirror`")
    print("ok")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TesseraError as e:
        sys.exit(f"error: {e}")
