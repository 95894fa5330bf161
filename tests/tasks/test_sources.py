from pathlib import Path

import pytest

from mediamill.tasks.sources import EntityRef, SourceError, discover, file_source


def test_entity_ref_parses_type_and_id() -> None:
    assert EntityRef.parse("product:42") == EntityRef("product", "42")
    assert str(EntityRef.parse(" collection:summer-2026 ")) == "collection:summer-2026"


@pytest.mark.parametrize(
    "text", ["product", "Product:1", "product:../1", "product:", ":1", "p:a/b"]
)
def test_entity_ref_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="TYPE:ID"):
        EntityRef.parse(text)


def test_directory_discovery_is_sorted_recursive_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.jpg").write_bytes(b"x")
    (tmp_path / "1.jpg").write_bytes(b"x")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    sources = discover(tmp_path)
    assert [s.filename for s in sources] == ["1.jpg", "2.jpg"]
    assert all(s.idempotent and s.source_key for s in sources)
    assert len({s.source_key for s in sources}) == 2


def test_manifest_rows_resolve_relative_paths_and_flag_bad_entities(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,entity,alt,user\na.jpg,product:1,Red shoe,ann\nb.jpg,bad entity,,\n")
    first, second = discover(manifest)
    assert first.path == (tmp_path / "a.jpg").resolve()
    assert first.entity == EntityRef("product", "1")
    assert (first.alt_text, first.uploader, first.problem) == ("Red shoe", "ann", None)
    assert second.problem is not None
    assert "line 3" in second.problem


def test_manifest_without_path_column_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file\na.jpg\n")
    with pytest.raises(SourceError, match="'path' column"):
        discover(manifest)


def test_uploads_are_never_idempotent_sources(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"abc")
    assert file_source(tmp_path / "a.jpg").source_key is None


def test_discovery_skips_excluded_folders(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    home = tmp_path / ".mediamill-home"
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "catalog.db").write_bytes(b"x")
    home.mkdir()
    sources = discover(tmp_path, exclude=[tmp_path / "state"])
    assert [s.filename for s in sources] == ["a.jpg"]
