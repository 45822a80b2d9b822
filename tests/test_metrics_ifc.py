"""IFC: the vectorised metric against a line-by-line port of Sheikh's ifcvec.m (pyrtools' corrDn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pt = pytest.importorskip("pyrtools", reason="pyrtools (a declared dependency) provides the reference corrDn")
from pyrtools.pyramids.c.wrapper import corrDn  # noqa: E402

from srcore.metrics.ifc import corr_reflect, ifc, sp5_filters  # noqa: E402


def np_ifcvec(imorg: np.ndarray, imdist: np.ndarray) -> float:
    """ifcvec.m + distsub_est_m.m + refparams_vecgsm.m, loops and MATLAB column-major order kept."""
    m = 3
    subbands = [4, 7, 10, 13, 16, 19, 22, 25]

    def wtree(im: np.ndarray) -> dict[int, np.ndarray]:
        pyr = pt.pyramids.SteerablePyramidSpace(im, height=4, order=5, edge_type="reflect1")
        # ind2wtree reverses MATLAB's [hi0, level1 bands 1..6, ..., level4 bands, lowpass] order
        return {sub: pyr.pyr_coeffs[((27 - sub - 2) // 6, (27 - sub - 2) % 6)] for sub in subbands}

    org, dist = wtree(imorg.astype(float)), wtree(imdist.astype(float))
    total = 0.0
    for sub in subbands:
        y, yn = org[sub], dist[sub]
        lev = int(np.ceil((sub - 1) / 6))
        winsize = 2**lev + 1
        win = np.ones((winsize, winsize))
        ny, nx = (int(v) // m * m for v in y.shape)
        y, yn = y[:ny, :nx], yn[:ny, :nx]
        kw = {"edge_type": "reflect1", "step": (m, m), "start": (1, 1), "stop": (ny - 1, nx - 1)}
        mean_x, mean_y = corrDn(y, win / win.sum(), **kw), corrDn(yn, win / win.sum(), **kw)
        cov_xy = corrDn(y * yn, win, **kw) - win.sum() * mean_x * mean_y
        ss_x = corrDn(y**2, win, **kw) - win.sum() * mean_x**2
        ss_y = corrDn(yn**2, win, **kw) - win.sum() * mean_y**2
        ss_x[ss_x < 0] = 0
        ss_y[ss_y < 0] = 0
        tol = 1e-15
        g = cov_xy / (ss_x + tol)
        vv = (ss_y - g * cov_xy) / win.sum()
        g[ss_x < tol] = 0
        vv[ss_x < tol] = ss_y[ss_x < tol]
        g[ss_y < tol] = 0
        vv[ss_y < tol] = 0
        vv[g < 0] = ss_y[g < 0]
        g[g < 0] = 0
        vv[vv <= tol] = tol
        temp = np.array(
            [y[k : ny - (m - 1 - k), j : nx - (m - 1 - j)].reshape(-1, order="F") for j in range(m) for k in range(m)]
        )
        mcu = temp.mean(axis=1, keepdims=True)
        cu = (temp - mcu) @ (temp - mcu).T / temp.shape[1]
        temp = np.array([y[k::m, j::m].reshape(-1, order="F") for j in range(m) for k in range(m)])
        ss = ((np.linalg.inv(cu) @ temp * temp).sum(axis=0) / (m * m)).reshape((ny // m, nx // m), order="F")
        lam = np.linalg.eigvalsh(cu)
        off = int(np.ceil(((winsize - 1) / 2) / m))
        g, vv, ss = (a[off:-off, off:-off] for a in (g, vv, ss))
        for lj in lam:
            total += np.sum(np.log2(1 + g * g * ss * lj / (vv + 1e-10)))
    return total / imorg.size


def test_corr_matches_matlab_corrdn():
    x = np.random.default_rng(0).random((61, 47)) * 255
    f = sp5_filters()
    cases = [(f["lofilt"][None], 2, 0), (f["bfilts"][:1], 1, 0), (f["lo0filt"][None], 1, 0),
             (torch.ones(1, 5, 5, dtype=torch.float64), 3, 1)]
    for filt, step, start in cases:
        ref = corrDn(x, filt[0].numpy(), "reflect1", step=(step, step), start=(start, start))
        ours = corr_reflect(torch.from_numpy(x)[None, None], filt, step, start)[0, 0].numpy()
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_ifc_matches_reference_port():
    import cv2
    from skimage import data

    rng = np.random.default_rng(0)
    im = data.camera()[100:300, 50:290].astype(float)
    noisy = np.clip(im + rng.normal(0, 10, im.shape), 0, 255).round()
    blurred = cv2.GaussianBlur(im, (5, 5), 1.2)
    batch_ref = torch.from_numpy(np.stack([im, im]))[:, None]
    batch_dist = torch.from_numpy(np.stack([noisy, blurred]))[:, None]
    ours = ifc(batch_ref, batch_dist)
    refs = [np_ifcvec(im, noisy), np_ifcvec(im, blurred)]
    np.testing.assert_allclose(ours.numpy(), refs, rtol=1e-10)
    assert refs[0] > 0 and refs[1] > 0


def test_ifc_metric_uses_y_and_crop(srcore_manager):
    from skimage import data

    hr = torch.from_numpy(data.astronaut()[:200, :240].astype(np.float64) / 255).permute(2, 0, 1)[None]
    noise = torch.randn(hr.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sr = (hr + 0.03 * noise).clamp(0, 1)
    m = srcore_manager.registries.build("metric", "core:ifc", {"crop_border": 4})
    got = m.update(sr, hr).item()
    y = lambda t: np.floor((t[0].numpy() * 255 + 0.5).astype(np.int64).transpose(1, 2, 0)  # noqa: E731
                           @ np.array([65481, 128553, 24966]) / 1 + 127500) // 255000 + 16
    expected = np_ifcvec(y(hr)[4:-4, 4:-4], y(sr)[4:-4, 4:-4])
    assert got == pytest.approx(expected, rel=1e-10)
