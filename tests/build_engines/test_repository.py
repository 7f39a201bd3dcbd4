"""Model repository generation: what regeneration keeps."""

from __future__ import annotations


def test_regenerating_the_repository_keeps_its_readme(tmp_path):
    from build_engines.repository import clear_repository

    (tmp_path / "README.md").write_text("kept")
    (tmp_path / "stale_model" / "1").mkdir(parents=True)
    (tmp_path / "stale_model" / "config.pbtxt").write_text("name: 'stale_model'")
    (tmp_path / "PROFILE").write_text("gpu\n")
    clear_repository(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    clear_repository(tmp_path / "new")
    assert (tmp_path / "new").is_dir()


def test_clearing_leaves_folders_that_are_not_models(tmp_path):
    from build_engines.repository import clear_repository

    (tmp_path / "model" / "1").mkdir(parents=True)
    (tmp_path / "model" / "config.pbtxt").write_text("name: 'model'")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    clear_repository(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
