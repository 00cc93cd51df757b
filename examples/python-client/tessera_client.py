"""A small client for the tessera HTTP API (see docs/api.md).

Everything goes through one `Client`: it sends the bearer token, turns error answers into
`TesseraError` with the server's code and message, streams uploads and downloads from and to
files, follows a run's server-sent events, and pages through the change feed.

    client = Client("http://127.0.0.1:8080", token)
    image = client.upload_image("default", "slide.svs")
    run = client.start_run("default", "nuclei-detect", image=image["id"])
    run = client.wait_run("default", run["id"], on_progress=print)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

import requests

__all__ = ["Client", "TesseraError", "TERMINAL_STATES"]

#: Run states after which nothing changes any more.
TERMINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})

_CHUNK = 1 << 20


class TesseraError(Exception):
    """An error answer: the HTTP status, the API's error code and its message."""

    def __init__(self, status: int, code: str, message: str, url: str):
        super().__init__(f"{status} {code}: {message} ({url})")
        self.status = status
        self.code = code
        self.message = message
        self.url = url


def _segment(value: str) -> str:
    """One path segment, escaped so an id can never change the route."""
    return quote(value, safe="")


class Client:
    """A connection to one tessera server as one user."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    # -- plumbing -------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.url}/api{path}"
        kwargs.setdefault("timeout", self.timeout)
        response = self.session.request(method, url, **kwargs)
        if response.status_code >= 400:
            code, message = "http", response.text[:500]
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                pass
            response.close()
            raise TesseraError(response.status_code, code, message, url)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _project(project: str) -> str:
        return f"/projects/{_segment(project)}"

    def _image(self, project: str, image: str) -> str:
        return f"{self._project(project)}/images/{_segment(image)}"

    # -- who and where --------------------------------------------------------------------

    def me(self) -> dict:
        """The calling user: name, teams, role."""
        return self._json("GET", "/me")

    def projects(self) -> list[dict]:
        """The projects the caller can see."""
        return self._json("GET", "/projects")

    def create_project(self, name: str, team: str) -> dict:
        """A new project owned by `team` (one of the caller's teams)."""
        return self._json("POST", "/projects", json={"name": name, "team": team})

    def project_named(self, name: str) -> dict | None:
        """The visible project called `name`, if any."""
        return next((p for p in self.projects() if p["name"] == name), None)

    def plugins(self) -> list[dict]:
        """Installed plugins with their parameter schemas."""
        return self._json("GET", "/plugins")

    # -- images ---------------------------------------------------------------------------

    def upload_image(self, project: str, path: str | Path, name: str | None = None) -> dict:
        """Uploads a file, streamed from disk. The same bytes uploaded twice are stored once."""
        path = Path(path)
        with path.open("rb") as body:
            return self._json(
                "POST",
                f"{self._project(project)}/images",
                params={"name": name or path.name},
                data=body,
                headers={"Content-Type": "application/octet-stream"},
            )

    def images(self, project: str) -> list[dict]:
        return self._json("GET", f"{self._project(project)}/images")

    def image(self, project: str, image: str) -> dict:
        return self._json("GET", self._image(project, image))

    def download_image(self, project: str, image: str, dest: str | Path) -> Path:
        """Writes the original file to `dest`, streamed."""
        return self._download(f"{self._image(project, image)}/file", Path(dest))

    def copy_image(self, project: str, image: str, to_project: str) -> dict:
        """Puts the image into another project; no pixels are copied."""
        return self._json(
            "POST", f"{self._image(project, image)}/copy", json={"project": to_project}
        )

    def _download(self, path: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        with self._request("GET", path, stream=True) as response, partial.open("wb") as out:
            for chunk in response.iter_content(_CHUNK):
                out.write(chunk)
        partial.replace(dest)
        return dest

    # -- annotations ----------------------------------------------------------------------

    def annotations(
        self,
        project: str,
        image: str,
        source: str = "manual",
        bbox: tuple[float, float, float, float] | None = None,
    ) -> dict:
        """A GeoJSON FeatureCollection; with `bbox` (x0, y0, x1, y1) only what meets it."""
        params = {"source": source}
        if bbox is not None:
            params["bbox"] = ",".join(str(v) for v in bbox)
        return self._json("GET", f"{self._image(project, image)}/annotations", params=params)

    def annotation_sources(self, project: str, image: str) -> list[dict]:
        return self._json("GET", f"{self._image(project, image)}/annotations/sources")

    def put_annotations(
        self, project: str, image: str, collection: dict, source: str = "manual"
    ) -> dict:
        """Replaces the collection of `source` with `collection`."""
        return self._json(
            "PUT",
            f"{self._image(project, image)}/annotations",
            params={"source": source},
            json=collection,
        )

    def add_annotations(
        self, project: str, image: str, collection: dict, source: str = "manual"
    ) -> dict:
        """Appends the features of `collection` to `source`."""
        return self._json(
            "POST",
            f"{self._image(project, image)}/annotations",
            params={"source": source},
            json=collection,
        )

    # -- runs and results -----------------------------------------------------------------

    def start_run(
        self,
        project: str,
        plugin: str,
        image: str | None = None,
        dataset: str | None = None,
        params: dict | None = None,
    ) -> dict:
        """Starts `plugin` on one image or a whole dataset; answers the queued run."""
        body: dict[str, Any] = {"plugin": plugin, "params": params or {}}
        if image is not None:
            body["image"] = image
        if dataset is not None:
            body["dataset"] = dataset
        return self._json("POST", f"{self._project(project)}/runs", json=body)

    def run(self, project: str, run: str) -> dict:
        return self._json("GET", f"{self._project(project)}/runs/{_segment(run)}")

    def cancel_run(self, project: str, run: str) -> dict:
        return self._json("POST", f"{self._project(project)}/runs/{_segment(run)}/cancel")

    def events(self, project: str, run: str) -> Iterator[tuple[str, Any]]:
        """The run's server-sent events as (event, data) pairs, until the stream ends."""
        path = f"{self._project(project)}/runs/{_segment(run)}/events"
        with self._request("GET", path, stream=True, timeout=(self.timeout, None)) as response:
            event, data = "message", []
            for line in response.iter_lines(decode_unicode=True):
                if line is None:
                    continue
                if line == "":
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)

    def wait_run(
        self, project: str, run: str, on_progress: Callable[[dict], None] | None = None
    ) -> dict:
        """Follows the run's events until it ends; answers the final run."""
        last = None
        for event, data in self.events(project, run):
            if event == "progress" and on_progress is not None:
                on_progress(data)
            elif event == "state":
                last = data
                if data["state"] in TERMINAL_STATES:
                    return data
        # The stream ended without a terminal state (e.g. the server restarted): ask.
        last = self.run(project, run)
        return last

    def results(self, project: str, image: str | None = None) -> list[dict]:
        params = {"image": image} if image else None
        return self._json("GET", f"{self._project(project)}/results", params=params)

    def result_geojson(self, project: str, result: str) -> dict:
        return self._json("GET", f"{self._project(project)}/results/{_segment(result)}/geojson")

    def download_result(self, project: str, result: str, dest: str | Path) -> Path:
        path = f"{self._project(project)}/results/{_segment(result)}/geojson"
        return self._download(path, Path(dest))

    # -- change feed ----------------------------------------------------------------------

    def changes(self, since: str | None = None, limit: int = 1000) -> tuple[list[dict], str]:
        """One page of changes after `since`, and the cursor to pass next time."""
        params: dict[str, Any] = {"limit": limit}
        if since:
            params["since"] = since
        page = self._json("GET", "/changes", params=params)
        return page["changes"], page["next"]

    def all_changes(self, since: str | None = None) -> tuple[list[dict], str]:
        """Every change after `since`, following pages until nothing is new."""
        collected: list[dict] = []
        cursor = since
        while True:
            page, following = self.changes(cursor)
            collected.extend(page)
            if not page or following == cursor:
                return collected, following
            cursor = following
