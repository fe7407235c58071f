"""Tests for dcnrank.data.sources.download: a real HTTP server on 127.0.0.1 serving tiny archives."""

from __future__ import annotations

import functools
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcnrank.data import (
    MOVIELENS_100K_SHA256,
    ChecksumMismatchError,
    MovieLensDownloadError,
    default_cache_dir,
    download_movielens,
    install_movielens_zip,
    sha256_file,
    verify_checksums,
)
from dcnrank.data.sources import download as download_module

_FILES = ("u.data", "u.user", "u.item")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (port chosen by the OS), and its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _zip_bytes(folder: Path, *, prefix: str = "ml-100k/", replace: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in _FILES:
            data = (replace or {}).get(name, (folder / name).read_bytes())
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


def _sums(folder: Path) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in _FILES}


def test_download_success(served: tuple[Path, str], tiny_movielens_dir: Path, tmp_path: Path) -> None:
    root, base = served
    (root / "ml-100k.zip").write_bytes(_zip_bytes(tiny_movielens_dir))
    cache = tmp_path / "cache"
    found = download_movielens(cache, url=f"{base}/ml-100k.zip", expected_sha256=_sums(tiny_movielens_dir))
    assert found == cache / "ml-100k"
    for name in _FILES:
        assert (found / name).read_bytes() == (tiny_movielens_dir / name).read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]  # no temporaries left


def test_download_flat_zip(served: tuple[Path, str], tiny_movielens_dir: Path, tmp_path: Path) -> None:
    root, base = served
    (root / "flat.zip").write_bytes(_zip_bytes(tiny_movielens_dir, prefix=""))
    cache = tmp_path / "cache"
    found = download_movielens(cache, url=f"{base}/flat.zip", expected_sha256=_sums(tiny_movielens_dir))
    assert _sums(found) == _sums(tiny_movielens_dir)
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]


def test_download_progress_bar_only_when_asked(
    served: tuple[Path, str],
    tiny_movielens_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = served
    (root / "ml-100k.zip").write_bytes(_zip_bytes(tiny_movielens_dir))
    sums = _sums(tiny_movielens_dir)
    download_movielens(tmp_path / "a", url=f"{base}/ml-100k.zip", expected_sha256=sums)
    assert capsys.readouterr().err == ""
    download_movielens(tmp_path / "b", url=f"{base}/ml-100k.zip", expected_sha256=sums, progress=True)
    assert "ml-100k.zip" in capsys.readouterr().err


def test_download_checksum_mismatch_leaves_nothing(
    served: tuple[Path, str], tiny_movielens_dir: Path, tmp_path: Path
) -> None:
    root, base = served
    (root / "ml-100k.zip").write_bytes(_zip_bytes(tiny_movielens_dir, replace={"u.data": b"1\t1\t5\t1\n"}))
    cache = tmp_path / "cache"
    url = f"{base}/ml-100k.zip"
    with pytest.raises(
        ChecksumMismatchError,
        match=rf"{url}: u.data: SHA-256 mismatch: expected [0-9a-f]{{64}}, got",
    ):
        download_movielens(cache, url=url, expected_sha256=_sums(tiny_movielens_dir))
    assert list(cache.iterdir()) == []


def test_download_verifies_the_real_sums_by_default(
    served: tuple[Path, str], tiny_movielens_dir: Path, tmp_path: Path
) -> None:
    root, base = served
    (root / "ml-100k.zip").write_bytes(_zip_bytes(tiny_movielens_dir))
    with pytest.raises(ChecksumMismatchError, match=MOVIELENS_100K_SHA256["u.data"]):
        download_movielens(tmp_path / "cache", url=f"{base}/ml-100k.zip")
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_missing_file_in_zip(served: tuple[Path, str], tiny_movielens_dir: Path, tmp_path: Path) -> None:
    root, base = served
    (root / "ml-100k.zip").write_bytes(_zip_bytes(tiny_movielens_dir))
    sums = {**_sums(tiny_movielens_dir), "u.genre": "0" * 64}
    with pytest.raises(ChecksumMismatchError, match=r"u.genre: file is missing"):
        download_movielens(tmp_path / "cache", url=f"{base}/ml-100k.zip", expected_sha256=sums)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_http_404_leaves_nothing(served: tuple[Path, str], tmp_path: Path) -> None:
    _, base = served
    url = f"{base}/missing.zip"
    cache = tmp_path / "cache"
    with pytest.raises(MovieLensDownloadError, match=rf"could not download {url}: HTTP 404"):
        download_movielens(cache, url=url)
    assert list(cache.iterdir()) == []


def test_download_not_a_zip_leaves_nothing(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    (root / "ml-100k.zip").write_bytes(b"<html>not a zip</html>")
    url = f"{base}/ml-100k.zip"
    cache = tmp_path / "cache"
    with pytest.raises(MovieLensDownloadError, match=rf"{url}: not a valid zip archive"):
        download_movielens(cache, url=url)
    assert list(cache.iterdir()) == []


def test_download_connection_refused(tmp_path: Path) -> None:
    # Bind then close a socket to get a port nobody listens on.
    server = http.server.HTTPServer(("127.0.0.1", 0), _QuietHandler)
    port = server.server_address[1]
    server.server_close()
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    with pytest.raises(MovieLensDownloadError, match=rf"could not download {url}"):
        download_movielens(tmp_path / "cache", url=url, timeout=5)
    assert list((tmp_path / "cache").iterdir()) == []


def test_interrupted_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_fetch(url, stream, *, progress, timeout):
        stream.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(download_module, "_fetch", interrupted_fetch)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        download_movielens(cache, url="http://127.0.0.1:1/ml-100k.zip")
    assert list(cache.iterdir()) == []


def test_install_replaces_existing_cache(tiny_movielens_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(_zip_bytes(tiny_movielens_dir))
    cache = tmp_path / "cache"
    (cache / "ml-100k").mkdir(parents=True)
    (cache / "ml-100k" / "u.data").write_text("stale\n")
    found = install_movielens_zip(archive, cache, expected_sha256=_sums(tiny_movielens_dir))
    assert _sums(found) == _sums(tiny_movielens_dir)
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]


def test_install_mismatch_keeps_existing_cache(tiny_movielens_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(_zip_bytes(tiny_movielens_dir))
    cache = tmp_path / "cache"
    (cache / "ml-100k").mkdir(parents=True)
    (cache / "ml-100k" / "u.data").write_text("previous\n")
    with pytest.raises(ChecksumMismatchError, match=rf"{archive}: u.user: SHA-256 mismatch"):
        install_movielens_zip(archive, cache, expected_sha256={"u.user": "0" * 64})
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]
    assert (cache / "ml-100k" / "u.data").read_text() == "previous\n"


def test_install_missing_zip(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"MovieLens archive not found. Received: zip_path='.*nope.zip'"):
        install_movielens_zip(tmp_path / "nope.zip", tmp_path / "cache")


def test_verify_checksums_reports_the_file(tiny_movielens_dir: Path) -> None:
    verify_checksums(tiny_movielens_dir, _sums(tiny_movielens_dir))
    path = tiny_movielens_dir / "u.item"
    with pytest.raises(ChecksumMismatchError, match=rf"{path}: SHA-256 mismatch: expected {'a' * 64}"):
        verify_checksums(tiny_movielens_dir, {"u.item": "a" * 64})


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "dcnrank"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dcnrank"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dcnrank"
