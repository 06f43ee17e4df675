"""Vectorised replica of scipy's bounded Brent minimiser (`minimize_scalar(method="bounded")`).

Every array element runs its own minimisation with exactly the arithmetic of
scipy.optimize._optimize._minimize_scalar_bounded (Brent 1973, fminbound), so results agree bit for bit
with the per-row scalar calls made by spotify-confidence; the Python loop runs over iterations, not rows.
"""

from __future__ import annotations

from collections.abc import Callable
from math import sqrt

import numpy as np

Objective = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""f(x, idx): objective at points x for the rows idx (indices into the original arrays)."""

_SQRT_EPS = sqrt(2.2e-16)
_GOLDEN_MEAN = 0.5 * (3.0 - sqrt(5.0))


def minimize_bounded(
    func: Objective, lower: np.ndarray, upper: np.ndarray, xatol: float = 1e-5, maxiter: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise func on [lower_i, upper_i] per element; returns (x, f(x)) like scipy's bounded method."""
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    n = lower.shape[0]
    x_out = np.empty(n)
    f_out = np.empty(n)
    idx = np.arange(n)

    a, b = lower.copy(), upper.copy()
    fulc = a + _GOLDEN_MEAN * (b - a)
    nfc, xf = fulc.copy(), fulc.copy()
    rat = np.zeros(n)
    e = np.zeros(n)
    fx = func(xf, idx)
    num = 1
    ffulc, fnfc = fx.copy(), fx.copy()
    xm = 0.5 * (a + b)
    tol1 = _SQRT_EPS * np.abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1

    with np.errstate(all="ignore"):
        while idx.size:
            running = np.abs(xf - xm) > (tol2 - 0.5 * (b - a))
            if num >= maxiter:
                running[:] = False
            if not running.all():
                done = ~running
                x_out[idx[done]] = xf[done]
                f_out[idx[done]] = fx[done]
                idx = idx[running]
                a, b, fulc, nfc, xf, rat, e = (v[running] for v in (a, b, fulc, nfc, xf, rat, e))
                fx, ffulc, fnfc, xm, tol1, tol2 = (v[running] for v in (fx, ffulc, fnfc, xm, tol1, tol2))
                if not idx.size:
                    break

            # parabolic fit (only where |e| > tol1)
            para = np.abs(e) > tol1
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            p = np.where(q > 0.0, -p, p)
            q = np.abs(q)
            r = e
            e_para = rat
            accept = para & (np.abs(p) < np.abs(0.5 * q * r)) & (p > q * (a - xf)) & (p < q * (b - xf))
            rat_para = (p + 0.0) / q
            x_para = xf + rat_para
            near = ((x_para - a) < tol2) | ((b - x_para) < tol2)
            si = np.sign(xm - xf) + ((xm - xf) == 0)
            rat_para = np.where(near, tol1 * si, rat_para)
            # golden-section step everywhere else
            e_gold = np.where(xf >= xm, a - xf, b - xf)
            e = np.where(accept, e_para, e_gold)
            rat = np.where(accept, rat_para, _GOLDEN_MEAN * e_gold)

            si = np.sign(rat) + (rat == 0)
            x = xf + si * np.maximum(np.abs(rat), tol1)
            fu = func(x, idx)
            num += 1

            better = fu <= fx
            right = x >= xf
            # fu <= fx: shrink towards x, which becomes the new best point
            new_a = np.where(better, np.where(right, xf, a), np.where(~right, x, a))
            new_b = np.where(better, np.where(~right, xf, b), np.where(right, x, b))
            c1 = ~better & ((fu <= fnfc) | (nfc == xf))
            c2 = ~better & ~c1 & ((fu <= ffulc) | (fulc == xf) | (fulc == nfc))
            new_fulc = np.where(better | c1, nfc, np.where(c2, x, fulc))
            new_ffulc = np.where(better | c1, fnfc, np.where(c2, fu, ffulc))
            new_nfc = np.where(better, xf, np.where(c1, x, nfc))
            new_fnfc = np.where(better, fx, np.where(c1, fu, fnfc))
            xf = np.where(better, x, xf)
            fx = np.where(better, fu, fx)
            a, b, fulc, ffulc, nfc, fnfc = new_a, new_b, new_fulc, new_ffulc, new_nfc, new_fnfc

            xm = 0.5 * (a + b)
            tol1 = _SQRT_EPS * np.abs(xf) + xatol / 3.0
            tol2 = 2.0 * tol1
    return x_out, f_out
