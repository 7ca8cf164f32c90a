"""/results in the web app: the results page and its files, read-only, and nothing outside
the results folder."""

from __future__ import annotations

import os
from urllib.parse import unquote

import pytest
from matplotlib.image import imsave
from test_dashboard import Page

from digitlab.pipeline.dashboard import write_page
from digitlab.web import create_app
from digitlab.web.results import inside

SECRET = "secret outside the results folder"


@pytest.fixture
def folders(tmp_path):
    results = tmp_path / "results"
    (results / "mini_mnist").mkdir(parents=True)
    imsave(results / "mini_mnist" / "samples.png", [[0.0, 1.0], [1.0, 0.0]])
    write_page(results)
    (tmp_path / "secret.txt").write_text(SECRET)
    (results / ".hidden.txt").write_text(SECRET)
    os.symlink(tmp_path / "secret.txt", results / "link.txt")
    os.symlink(tmp_path, results / "outside")
    os.symlink(results / "mini_mnist" / "samples.png", results / "inside.png")
    return tmp_path, results


def client_for(results, tmp_path):
    # No generator model in tmp_path/models: the results pages do not need one.
    return create_app(tmp_path / "models", results_dir=results).test_client()


def test_results_serves_the_page_and_the_images_it_shows(folders):
    tmp_path, results = folders
    client = client_for(results, tmp_path)
    response = client.get("/results", follow_redirects=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.data == (results / "index.html").read_bytes()
    # The page's relative links resolve under /results/, as they do on disk.
    assert response.request.path == "/results/"
    sources = Page(response.get_data(as_text=True)).sources
    assert sources == ["mini_mnist/samples.png"]
    image = client.get("/results/" + sources[0])
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data == (results / unquote(sources[0])).read_bytes()
    # A link inside the folder that stays inside it is served too.
    assert client.get("/results/inside.png").data == image.data


@pytest.mark.parametrize("url", [
    "/results/../secret.txt",
    "/results/%2e%2e/secret.txt",
    "/results/..%2fsecret.txt",
    "/results/mini_mnist/%2e%2e/%2e%2e/secret.txt",
    "/results/%2fetc%2fpasswd",
    "/results//etc/passwd",
    f"/results/{'%2e%2e/' * 12}etc/passwd",
    "/results/%252e%252e/secret.txt",
    "/results/link.txt",
    "/results/outside/secret.txt",
    "/results/.hidden.txt",
    "/results/missing.png",
])
def test_nothing_outside_the_results_folder_can_be_reached(folders, url):
    tmp_path, results = folders
    response = client_for(results, tmp_path).get(url, follow_redirects=True)
    assert response.status_code == 404
    assert SECRET not in response.get_data(as_text=True)
    assert "root:" not in response.get_data(as_text=True)


def test_results_is_read_only(folders):
    tmp_path, results = folders
    client = client_for(results, tmp_path)
    assert client.post("/results/").status_code == 405
    assert client.put("/results/mini_mnist/samples.png", data=b"x").status_code == 405
    assert client.delete("/results/mini_mnist/samples.png").status_code == 405
    assert (results / "mini_mnist" / "samples.png").stat().st_size > 0


def test_without_a_results_page_the_route_says_how_to_make_one(tmp_path):
    response = client_for(tmp_path / "results", tmp_path).get("/results/")
    assert response.status_code == 404
    assert "`make summary`" in response.get_data(as_text=True)


def test_absolute_paths_and_dot_dot_are_refused_below_the_url_layer(folders):
    # Werkzeug already merges '//' and decodes '%2f' into a redirect; the check itself
    # must hold without that help.
    tmp_path, results = folders
    assert inside(results, "mini_mnist/samples.png") == (results / "mini_mnist" /
                                                         "samples.png").resolve()
    for name in (str(tmp_path / "secret.txt"), "../secret.txt", "mini_mnist/../../secret.txt",
                 "link.txt", "outside/secret.txt", "/etc/passwd"):
        assert inside(results, name) is None, name
