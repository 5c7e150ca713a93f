from pathlib import Path

import pytest

from curation.errors import ConfigError
from curation.workspace.settings import ConversionSettings, ExclusionSettings, Settings
from curation.workspace.settings_file import load_settings, save_settings


def test_roundtrip(tmp_path: Path) -> None:
    settings = Settings(name="x", seed=7, sources=("/a",), conversion=ConversionSettings(spacings_mm=(1.5, 3)))
    save_settings(settings, tmp_path / "c.toml")
    loaded = load_settings(tmp_path / "c.toml")
    assert loaded == settings
    assert loaded.conversion.spacings_mm == (1.5, 3.0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"settings file not found; run 'ctcurate init'"):
        load_settings(tmp_path / "nope.toml")


def test_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("seed = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path / "c.toml")


def test_unknown_key(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[exclusion]\nmin_slicez = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) exclusion.min_slicez"):
        load_settings(tmp_path / "c.toml")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("colour = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) colour"):
        load_settings(tmp_path / "c.toml")


def test_bad_value_type(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[exclusion]\nmin_slices = 'many'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'exclusion.min_slices' must be a number"):
        load_settings(tmp_path / "c.toml")


def test_bad_value_range(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[conversion]\nspacings_mm = [1.5, -3]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="conversion.spacings_mm.*positive"):
        load_settings(tmp_path / "c.toml")


def test_gap_tolerance_must_exceed_one() -> None:
    with pytest.raises(ConfigError, match="gap_tolerance"):
        ExclusionSettings(gap_tolerance=1.0)


def test_keywords_upper_cased() -> None:
    assert ExclusionSettings(extremity_keywords=("knee",)).extremity_keywords == ("KNEE",)


def test_min_slices_below_two_is_refused(tmp_path: Path) -> None:
    """Convert needs two positions for a spacing, so the filter may not let one-slice series through."""
    (tmp_path / "c.toml").write_text("[exclusion]\nmin_slices = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'exclusion.min_slices': expected >= 2 .* found 1"):
        load_settings(tmp_path / "c.toml")


@pytest.mark.parametrize(("text", "message"), [
    ("[exclusion]\nmax_tilt_deg = -1\n", "'exclusion.max_tilt_deg': expected >= 0"),
    ("[exclusion]\nmax_obliquity_deg = 200\n", "'exclusion.max_obliquity_deg': an angle between 0 and 90"),
    ("[conversion]\nspacings_mm = [0.01]\n", "'conversion.spacings_mm': expected spacings of at least 0.1 mm"),
    ("[conversion]\ncase_digits = 0\n", "'conversion.case_digits': expected 1..9, found 0"),
])
def test_out_of_range_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "c.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path / "c.toml")


def test_postgresql_urls_use_psycopg_3() -> None:
    from curation.workspace.settings import AnnotationSettings

    for typed in ("postgresql://ann@db.example/ct", "postgres://ann@db.example/ct",
                  "postgresql+psycopg2://ann@db.example/ct", "postgresql+psycopg://ann@db.example/ct"):
        assert AnnotationSettings(database_url=typed).database_url == "postgresql+psycopg://ann@db.example/ct"
    assert AnnotationSettings(database_url="sqlite:////data/a.sqlite").database_url == "sqlite:////data/a.sqlite"
    with pytest.raises(ConfigError, match="expected sqlite:///PATH or postgresql\\+psycopg://USER@HOST/DB"):
        AnnotationSettings(database_url="mysql://ann@db.example/ct")


def test_an_edited_file_is_read_again_and_an_unchanged_one_is_parsed_once(tmp_path: Path) -> None:
    path = tmp_path / "ctcurate.toml"
    save_settings(Settings(seed=1), path)
    first = load_settings(path)
    assert load_settings(path) is first  # a batch reads the settings once per case: parsed once
    path.write_text(path.read_text().replace("seed = 1", "seed = 2"))
    assert load_settings(path).seed == 2
    path.write_text(path.read_text().replace("seed = 2", "seed = [2"))
    with pytest.raises(ConfigError, match=r"ctcurate.toml: not valid TOML \(.*\); fix the syntax or re-create it"):
        load_settings(path)
