from pathlib import Path

import numpy as np
import pytest

from embedlens import DimensionMismatchError, Lens
from embedlens.app.cli import main
from embedlens.project import project_npy


def test_project_streams_and_matches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    lens = Lens(rng.standard_normal((8, 4)).astype(np.float32), mode="symmetric")
    seen = []
    project_npy(
        tmp_path / "x.npy", tmp_path / "y.npy", lens, batch_size=300, progress=False, on_batch=seen.append
    )
    assert seen == [300, 600, 900, 1000]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), lens.project_documents(x), atol=1e-6)


def test_project_interrupted_leaves_no_output(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((100, 4), np.float32))

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        project_npy(
            tmp_path / "x.npy",
            tmp_path / "y.npy",
            Lens.identity(4, mode="symmetric"),
            batch_size=10,
            progress=False,
            on_batch=stop,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_project_wrong_width_named(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((3, 5), np.float32))
    with pytest.raises(
        DimensionMismatchError, match=r"x.npy: array has shape \(3, 5\) but the lens expects \(n, 4\)"
    ):
        project_npy(tmp_path / "x.npy", tmp_path / "y.npy", Lens.identity(4))


def test_project_cli(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((3, 4), np.float32))
    lens_dir = Lens.identity(4, mode="symmetric").save(tmp_path / "lens")
    assert (
        main(
            [
                "project",
                "--lens",
                str(lens_dir),
                "--input",
                str(tmp_path / "x.npy"),
                "--output",
                str(tmp_path / "y.npy"),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), 0.5)
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    assert (
        main(
            [
                "project",
                "--lens",
                str(lens_dir),
                "--input",
                str(tmp_path / "bad.npy"),
                "--output",
                str(tmp_path / "z.npy"),
            ]
        )
        == 2
    )


def test_project_truncated_input_named(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((100, 4), np.float32))
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:-40])
    with pytest.raises(Exception, match="truncated at row 97 of 100"):
        project_npy(tmp_path / "x.npy", tmp_path / "y.npy", Lens.identity(4), batch_size=10, progress=False)
    assert not (tmp_path / "y.npy").exists()
