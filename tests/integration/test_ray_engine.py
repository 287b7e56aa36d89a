"""`project`/`embed --engine ray` on a real local Ray cluster (``ray start --head`` on 127.0.0.1).

Every row is compared with numpy (and with the local engine), ids in order; a worker killed mid-run is
retried by Ray or fails the job, and either way nothing partial is left under the output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="the embedlens[ray] extra is not installed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from embedlens.lens import Lens, load_lens  # noqa: E402
from tests.support.ray_cluster import LOOPBACK_ENV, ray_cluster  # noqa: E402

D = 32


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with ray_cluster(num_cpus=2) as address:
        yield address


def _cli(*args: str, wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "embedlens.app.cli", *args]
    env = {**os.environ, **LOOPBACK_ENV, "HF_HUB_OFFLINE": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _write_parts(root: Path, x: np.ndarray, files: int) -> list[str]:
    ids = [f"doc-{i:07d}" for i in range(len(x))]
    root.mkdir(parents=True)
    bounds = np.linspace(0, len(x), files + 1).astype(int)
    for k in range(files):
        lo, hi = bounds[k], bounds[k + 1]
        vec = pa.FixedSizeListArray.from_arrays(pa.array(x[lo:hi].ravel()), D)
        table = pa.table({"id": ids[lo:hi], "vector": vec, "shard": np.full(hi - lo, k)})
        pq.write_table(table, root / f"part-{k:03d}.parquet", row_group_size=5000)
    return ids


def _read(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("*.parquet"))])


def _vectors(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("vector").combine_chunks().flatten()).reshape(len(table), -1)


@pytest.fixture(scope="module")
def lens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    w = np.linalg.qr(rng.standard_normal((D, D)))[0][:, :16].astype(np.float32)
    return Lens(w, mode="symmetric").save(tmp_path_factory.mktemp("ray") / "lens")


def test_parquet_on_ray_equals_numpy_and_the_local_engine(
    cluster: str, lens_dir: Path, tmp_path: Path
) -> None:
    x = np.random.default_rng(1).standard_normal((30_000, D)).astype(np.float32)
    ids = _write_parts(tmp_path / "in", x, files=3)
    common = ("--lens", str(lens_dir), "--input", str(tmp_path / "in"), "--batch-size", "4096", "--quiet")
    ray_run = _cli(
        "project", *common, "--output", str(tmp_path / "ray"), "--engine", "ray", "--ray-address", cluster
    )
    assert ray_run.returncode == 0, ray_run.stderr
    local_run = _cli("project", *common, "--output", str(tmp_path / "local"))
    assert local_run.returncode == 0, local_run.stderr
    on_ray, local = _read(tmp_path / "ray"), _read(tmp_path / "local")
    expected = load_lens(lens_dir).project_documents(x)
    assert on_ray.column("id").to_pylist() == ids == local.column("id").to_pylist()  # row for row, id for id
    assert on_ray.column("shard").to_pylist() == local.column("shard").to_pylist()  # other columns carried
    np.testing.assert_allclose(_vectors(on_ray), expected, atol=1e-6)
    np.testing.assert_allclose(_vectors(on_ray), _vectors(local), atol=1e-6)
    assert (tmp_path / "ray" / "_embedlens.json").is_file()


def test_npy_on_ray_gives_row_numbers_as_ids(cluster: str, lens_dir: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(2).standard_normal((5_000, D)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = _cli(
        "project", "--lens", str(lens_dir), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "o"),
        "--engine", "ray", "--ray-address", cluster, "--batch-size", "700", "--side", "queries", "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    table = _read(tmp_path / "o")
    assert table.column("id").to_pylist() == list(range(len(x)))
    np.testing.assert_allclose(_vectors(table), load_lens(lens_dir).project_queries(x), atol=1e-6)


def test_a_bad_vector_on_ray_is_named_and_nothing_is_written(
    cluster: str, lens_dir: Path, tmp_path: Path
) -> None:
    x = np.random.default_rng(3).standard_normal((2_000, D)).astype(np.float32)
    x[1234, 5] = np.inf
    _write_parts(tmp_path / "in", x, files=2)
    out = tmp_path / "o"
    run = _cli(
        "project", "--lens", str(lens_dir), "--input", str(tmp_path / "in"), "--output", str(out),
        "--engine", "ray", "--ray-address", cluster, "--quiet",
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "part-001.parquet" in last and "'doc-0001234'" in last and "NaN or Inf" in last
    assert "Traceback" not in run.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


def _map_workers() -> list[int]:
    """PIDs of Ray actor processes of the map stage (their process title names it)."""
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            title = (d / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and "MapBatches" in title:
            pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_a_worker_killed_mid_run_is_retried_or_fails_cleanly(
    cluster: str, lens_dir: Path, tmp_path: Path
) -> None:
    x = np.random.default_rng(4).standard_normal((400_000, D)).astype(np.float32)
    ids = _write_parts(tmp_path / "in", x, files=40)
    out = tmp_path / "o"
    proc = _cli(
        "project", "--lens", str(lens_dir), "--input", str(tmp_path / "in"), "--output", str(out),
        "--engine", "ray", "--ray-address", cluster, "--batch-size", "2000", "--quiet", wait=False,
    )  # fmt: skip
    assert isinstance(proc, subprocess.Popen)
    killed, deadline = [], time.time() + 300
    while proc.poll() is None and not killed and time.time() < deadline:
        building = [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]
        if building and any(building[0].glob("*.parquet")):  # blocks are being written: mid-run
            for pid in _map_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=600)
    assert killed, "the job ended before a worker could be killed mid-run"
    print(f"killed {len(killed)} map worker(s) mid-run; the job exited {proc.returncode}")
    if proc.returncode == 0:  # Ray restarted the actor and retried its blocks
        table = _read(out)
        assert table.column("id").to_pylist() == ids
        np.testing.assert_allclose(_vectors(table), load_lens(lens_dir).project_documents(x), atol=1e-6)
    else:  # failed: cleanly, with nothing partial under the output
        assert "Traceback" not in stderr, stderr
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


def test_embed_on_ray_equals_the_local_engine(cluster: str, tmp_path: Path, cache_dir: Path) -> None:
    texts = [f"document number {i} about {'cats' if i % 2 else 'ships'}" for i in range(60)]
    src = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(60)], "text": texts}), src)
    common = ("embed", "--input", str(src), "--text-column", "text", "--quiet", "--batch-size", "16")
    ray_run = _cli(*common, "--output", str(tmp_path / "ray"), "--engine", "ray", "--ray-address", cluster)
    assert ray_run.returncode == 0, ray_run.stderr
    local_run = _cli(*common, "--output", str(tmp_path / "local.parquet"), "--cache", str(cache_dir))
    assert local_run.returncode == 0, local_run.stderr
    on_ray, local = _read(tmp_path / "ray"), pq.read_table(tmp_path / "local.parquet")
    assert on_ray.column("id").to_pylist() == local.column("id").to_pylist()
    assert on_ray.column("text").to_pylist() == texts
    np.testing.assert_allclose(_vectors(on_ray), _vectors(local), atol=1e-5)
    assert _vectors(local).shape == (60, 384)
