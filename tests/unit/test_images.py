"""The release images' build and cache rules (lifecycle/testbed/images.py), with a fake pip:
no network, no real virtualenv."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.errors import ExecutionError, UsageError
from lifecycle.testbed import images


class FakePip:
    """Plays `python -m venv DIR` (a bin/ with a python link) and `pip install` (a console
    script whose #! names the venv's python, as pip writes it); `fail_on` fails that command."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, argv: Sequence[str]) -> None:
        self.calls.append(list(argv))
        if self.fail_on and self.fail_on in argv:
            raise ExecutionError(f"fake {self.fail_on} failed")
        if argv[1:3] == ["-m", "venv"]:
            bindir = Path(argv[3]) / "bin"
            bindir.mkdir(parents=True)
            (bindir / "python").symlink_to("/usr/bin/python3")
            (bindir / "activate").write_text(f'VIRTUAL_ENV="{argv[3]}"\n')
        elif "install" in argv:
            venv = Path(argv[0]).parent.parent
            (venv / "bin" / "keystone-manage").write_text(f"#!{venv}/bin/python\nimport x\n")

    @property
    def installs(self) -> int:
        return sum("install" in call for call in self.calls)


@pytest.fixture
def spec(tmp_path: Path) -> images.ImageSpec:
    constraints = tmp_path.parent / f"{tmp_path.name}-constraints"
    constraints.mkdir()
    (constraints / "upper-constraints-2024.1.txt").write_text("gunicorn===21.2.0\n")
    return images.image_spec("2024.1", constraints_dir=constraints)


def build(root: Path, spec: images.ImageSpec, pip: FakePip) -> images.ImageResult:
    return images.build_image(spec.release, root, runner=pip, spec=spec)


def test_first_build_installs_the_release_with_its_constraints(
    tmp_path: Path, spec: images.ImageSpec
) -> None:
    pip = FakePip()
    result = build(tmp_path / "images", spec, pip)
    assert result.state == "built"
    assert result.path == tmp_path / "images" / "openstack-2024.1"
    install = next(call for call in pip.calls if "install" in call)
    assert install[install.index("-c") + 1] == str(spec.constraints)
    assert {"keystone==25.0.0", "openstack-placement==11.0.0", "gunicorn", "PyMySQL"} <= set(
        install
    )
    assert pip.calls[0][:3] == ["/usr/bin/python3", "-m", "venv"]


def test_scripts_name_the_final_path_not_the_temp_dir(
    tmp_path: Path, spec: images.ImageSpec
) -> None:
    result = build(tmp_path, spec, FakePip())
    script = (result.path / "bin" / "keystone-manage").read_text()
    assert script.startswith(f"#!{result.path}/bin/python\n")
    assert str(result.path) in (result.path / "bin" / "activate").read_text()
    assert (result.path / "bin" / "python").is_symlink()


def test_a_current_image_is_reused(tmp_path: Path, spec: images.ImageSpec) -> None:
    pip = FakePip()
    build(tmp_path, spec, pip)
    again = build(tmp_path, spec, pip)
    assert again.state == "cached"
    assert pip.installs == 1


def test_changed_constraints_rebuild_in_place(tmp_path: Path, spec: images.ImageSpec) -> None:
    pip = FakePip()
    build(tmp_path, spec, pip)
    spec.constraints.write_text("gunicorn===22.0.0\n")
    changed = images.image_spec("2024.1", constraints_dir=spec.constraints.parent)
    result = build(tmp_path, changed, pip)
    assert result.state == "built"
    assert pip.installs == 2
    assert images.is_current(result.path, changed)
    assert not images.is_current(result.path, spec)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["openstack-2024.1"]


def test_a_changed_package_list_is_not_current(tmp_path: Path, spec: images.ImageSpec) -> None:
    result = build(tmp_path, spec, FakePip())
    other = images.ImageSpec(
        spec.release, (*spec.packages, "uwsgi"), spec.constraints, spec.constraints_sha256
    )
    assert not images.is_current(result.path, other)


def test_a_failed_build_leaves_no_image_and_no_temp_dir(
    tmp_path: Path, spec: images.ImageSpec
) -> None:
    with pytest.raises(ExecutionError):
        build(tmp_path, spec, FakePip(fail_on="install"))
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []
    pip = FakePip()
    assert build(tmp_path, spec, pip).state == "built"


def test_a_failed_rebuild_keeps_the_old_image(tmp_path: Path, spec: images.ImageSpec) -> None:
    build(tmp_path, spec, FakePip())
    spec.constraints.write_text("gunicorn===22.0.0\n")
    changed = images.image_spec("2024.1", constraints_dir=spec.constraints.parent)
    with pytest.raises(ExecutionError):
        build(tmp_path, changed, FakePip(fail_on="install"))
    assert images.is_current(tmp_path / "openstack-2024.1", spec)


def test_a_half_image_without_stamp_is_rebuilt(tmp_path: Path, spec: images.ImageSpec) -> None:
    (tmp_path / "openstack-2024.1" / "bin").mkdir(parents=True)
    pip = FakePip()
    assert build(tmp_path, spec, pip).state == "built"


def test_every_release_has_packages_and_constraints() -> None:
    for release in images.releases():
        spec = images.image_spec(release)
        assert spec.constraints.is_file()
        assert any(p.startswith("keystone==") for p in spec.packages)


def test_unknown_release_is_bad_input() -> None:
    with pytest.raises(UsageError, match=r"2023\.1"):
        images.image_spec("2023.1")


def test_images_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFECYCLE_IMAGES", raising=False)
    monkeypatch.setenv("LIFECYCLE_CACHE", "/tmp/c")
    assert images.images_dir() == Path("/tmp/c/images")
    monkeypatch.setenv("LIFECYCLE_IMAGES", "/tmp/i")
    assert images.images_dir() == Path("/tmp/i")


def test_cli_rejects_an_unknown_release_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_IMAGES", str(tmp_path))
    code = main(["testbed", "images", "--release", "2024.1", "--release", "9999.1"])
    assert code == 2
    assert "9999.1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_cached_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_IMAGES", str(tmp_path))
    spec = images.image_spec("2025.1")
    images.build_image("2025.1", tmp_path, runner=FakePip(), spec=spec)
    assert main(["testbed", "images", "--release", "2025.1"]) == 0
    out = capsys.readouterr().out
    assert "openstack-2025.1" in out and "cached" in out
