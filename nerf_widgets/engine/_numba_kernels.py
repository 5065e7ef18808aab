"""The numba kernels behind ``engine.kernels`` (imported only through it, after the threading layer is set).

Module-level functions, not closures: numba's on-disk cache missed closures on every new process
(``march_density`` compiled for ~37 s in each one), while module-level functions load in well under a second.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["composite_backward", "distortion", "gather", "march_density", "march_proposal", "masked_adam", "occupancy", "probe",
           "scatter"]


@njit(parallel=True, cache=True, nogil=True)
def probe(x):  # type: ignore[no-untyped-def]
    for i in prange(x.shape[0]):
        x[i] += 1.0
    return x


@njit(inline="always", cache=True, nogil=True)
def to_grid(o, d, t, lo, size, warp, frame):  # type: ignore[no-untyped-def]
    """Point ``o + d t`` -> unit grid coordinates. ``warp`` (``contracted``'s modes): 0 none (bounded), 1 the
    sphere contraction, 2 the perspective warp of a forward-facing capture (x/z, y/z, 1/z in the reference
    camera ``frame`` [12]: its rotation's rows, then its centre, as [3,4] row-major); points behind it fall
    outside the grid."""
    px, py, pz = o[0] + d[0] * t, o[1] + d[1] * t, o[2] + d[2] * t
    if warp == 1:
        n = math.sqrt(px * px + py * py + pz * pz)
        if n > 1.0:
            f = (2.0 - 1.0 / n) / n
            px, py, pz = px * f, py * f, pz * f
    elif warp == 2:
        qx, qy, qz = px - frame[3], py - frame[7], pz - frame[11]
        cx = qx * frame[0] + qy * frame[4] + qz * frame[8]
        cy = qx * frame[1] + qy * frame[5] + qz * frame[9]
        depth = -(qx * frame[2] + qy * frame[6] + qz * frame[10])
        if depth < 1e-3:
            return -1.0, -1.0, -1.0
        px, py, pz = cx / depth, cy / depth, 1.0 / depth
    ux, uy, uz = (px - lo[0]) / size[0], (py - lo[1]) / size[1], (pz - lo[2]) / size[2]
    return ux, uy, uz


@njit(inline="always", cache=True, nogil=True)
def corner(ux, uy, uz, dims):  # type: ignore[no-untyped-def]
    """Unit grid coordinates -> the row of the cell's lowest corner in a [rx*ry*rz] table and the fractions.
    ``dims`` (rx, ry, rz): corners per axis (a perspective grid is finer across than in depth)."""
    rx, ry, rz = dims
    gx = min(max(ux * (rx - 1), 0.0), rx - 1.0001)
    gy = min(max(uy * (ry - 1), 0.0), ry - 1.0001)
    gz = min(max(uz * (rz - 1), 0.0), rz - 1.0001)
    ix, iy, iz = int(gx), int(gy), int(gz)
    return (ix * ry + iy) * rz + iz, gx - ix, gy - iy, gz - iz


@njit(inline="always", cache=True, nogil=True)
def interp1(table, base, fx, fy, fz, dims):  # type: ignore[no-untyped-def]
    sy = dims[2]
    sx = dims[1] * sy
    c00 = table[base] * (1 - fz) + table[base + 1] * fz
    c01 = table[base + sy] * (1 - fz) + table[base + sy + 1] * fz
    c10 = table[base + sx] * (1 - fz) + table[base + sx + 1] * fz
    c11 = table[base + sx + sy] * (1 - fz) + table[base + sx + sy + 1] * fz
    return (c00 * (1 - fy) + c01 * fy) * (1 - fx) + (c10 * (1 - fy) + c11 * fy) * fx


@njit(inline="always", cache=True, nogil=True)
def axis_exit(o, d, cell, k, n, lo, size):  # type: ignore[no-untyped-def]
    """Ray parameter where the ray leaves, along one axis, the K-cell block holding ``cell``."""
    b0 = (cell // k) * k
    if d > 1e-12:
        return (lo + size * min(b0 + k, n) / n - o) / d
    if d < -1e-12:
        return (lo + size * b0 / n - o) / d
    return 1e30


@njit(cache=True, nogil=True)
def walk(r, o, d, u, t0, t1, s, ds, occ, blocks, k, table, dims, lo, size, bounded, warp, frame, shift,  # type: ignore[no-untyped-def]
         inv_ref, t_stop, off, out_t, out_dt, out_base, out_frac, out_raw, out_tau, out_trans, out_w):
    """Walk ray ``r``; with ``off`` >= 0 write its samples from there. Returns the sample count.

    Bounded scenes (uniform steps) jump over empty K^3 blocks of cells: every sample skipped lies in
    the block (a margin of 0.05 steps keeps float rounding out of it), so the samples are the same as
    a cell-by-cell walk, with far fewer iterations through empty space."""
    nx, ny, nz = dims[0] - 1, dims[1] - 1, dims[2] - 1
    nby, nbz = (ny + k - 1) // k, (nz + k - 1) // k
    trans = 1.0
    count = 0
    i = 0
    while i < s.shape[0]:
        t = t0 + s[i] + u * ds[i]
        if t >= t1:
            break
        ux, uy, uz = to_grid(o, d, t, lo, size, warp, frame)
        if ux < 0.0 or uy < 0.0 or uz < 0.0 or ux > 1.0 or uy > 1.0 or uz > 1.0:
            i += 1
            continue
        cx, cy, cz = min(int(ux * nx), nx - 1), min(int(uy * ny), ny - 1), min(int(uz * nz), nz - 1)
        if not occ[(cx * ny + cy) * nz + cz]:
            if bounded and not blocks[((cx // k) * nby + cy // k) * nbz + cz // k]:
                te = min(axis_exit(o[0], d[0], cx, k, nx, lo[0], size[0]),
                         axis_exit(o[1], d[1], cy, k, ny, lo[1], size[1]),
                         axis_exit(o[2], d[2], cz, k, nz, lo[2], size[2]))
                j = int(math.floor((te - t0 - s[0]) / ds[0] - u - 0.05))
                if j > i:
                    i = j
            i += 1
            continue
        base, fx, fy, fz = corner(ux, uy, uz, dims)
        raw = interp1(table, base, fx, fy, fz, dims)
        x = raw + shift
        sp = x if x > 20.0 else math.log1p(math.exp(x))
        tau = sp * inv_ref * ds[i]
        w = trans * (1.0 - math.exp(-tau))
        if off >= 0:
            j = off + count
            out_t[j], out_dt[j], out_base[j] = t, ds[i], base
            out_frac[j, 0], out_frac[j, 1], out_frac[j, 2] = fx, fy, fz
            out_raw[j], out_tau[j], out_trans[j], out_w[j] = raw, tau, trans, w
        count += 1
        trans *= math.exp(-tau)
        if trans < t_stop:
            break
        i += 1
    return count


@njit(parallel=True, cache=True, nogil=True)
def march_density(origins, dirs, u, t0, t1, s, ds, occ, blocks, k, table, dims, lo, size, bounded, warp, frame,  # type: ignore[no-untyped-def]
                  shift, inv_ref, t_stop):
    nr = origins.shape[0]
    counts = np.zeros(nr, np.int64)
    e1, e2 = np.zeros(0, np.float32), np.zeros((0, 3), np.float32)
    ei = np.zeros(0, np.int64)
    for r in prange(nr):
        if t1[r] > t0[r]:
            counts[r] = walk(r, origins[r], dirs[r], u[r], t0[r], t1[r], s, ds, occ, blocks, k, table, dims, lo,
                             size, bounded, warp, frame, shift, inv_ref, t_stop, -1, e1, e1, ei, e2, e1, e1, e1, e1)
    starts = np.zeros(nr + 1, np.int64)
    for r in range(nr):
        starts[r + 1] = starts[r] + counts[r]
    m = starts[nr]
    ray_idx = np.empty(m, np.int64)
    t_out, dt_out = np.empty(m, np.float32), np.empty(m, np.float32)
    base_out, frac_out = np.empty(m, np.int64), np.empty((m, 3), np.float32)
    raw_out, tau_out = np.empty(m, np.float32), np.empty(m, np.float32)
    trans_out, w_out = np.empty(m, np.float32), np.empty(m, np.float32)
    for r in prange(nr):
        if counts[r] > 0:
            walk(r, origins[r], dirs[r], u[r], t0[r], t1[r], s, ds, occ, blocks, k, table, dims, lo, size, bounded,
                 warp, frame, shift, inv_ref, t_stop, starts[r], t_out, dt_out, base_out, frac_out, raw_out, tau_out, trans_out, w_out)
            for j in range(starts[r], starts[r + 1]):
                ray_idx[j] = r
    return starts, ray_idx, t_out, dt_out, base_out, frac_out, raw_out, tau_out, trans_out, w_out


@njit(inline="always", cache=True, nogil=True)
def ray_s(t):  # type: ignore[no-untyped-def]
    """Normalised ray distance of the distortion loss: t / (1 + t), 0 at the camera, 1/2 at the scene's centre
    (cameras sit about one unit from it), 1 at infinity: uniform in disparity beyond the centre."""
    return t / (1.0 + t) if t > 0.0 else 0.0


@njit(parallel=True, cache=True, nogil=True)
def distortion(starts, t, dt, w):  # type: ignore[no-untyped-def]
    """mip-NeRF 360's distortion loss per ray [N]: sum_ij w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 d_i over the
    ray's samples (interval midpoints m and lengths d in ``ray_s`` units), in O(samples) per ray."""
    nr = starts.shape[0] - 1
    out = np.zeros(nr, np.float32)
    for r in prange(nr):
        acc_w, acc_wm, loss = 0.0, 0.0, 0.0
        for k in range(starts[r], starts[r + 1]):
            s0, s1 = ray_s(t[k] - 0.5 * dt[k]), ray_s(t[k] + 0.5 * dt[k])
            m = 0.5 * (s0 + s1)
            loss += 2.0 * w[k] * (m * acc_w - acc_wm) + w[k] * w[k] * (s1 - s0) / 3.0
            acc_w += w[k]
            acc_wm += w[k] * m
        out[r] = loss
    return out


@njit(parallel=True, cache=True, nogil=True)
def composite_backward(starts, w, tau, trans, dt, raw, colour_row, rgb_s, bg, g_rgb, shift, inv_ref, t,  # type: ignore[no-untyped-def]
                       g_dist):
    """Gradients of rgb = bg + sum_kept w_i (c_i - bg), plus ``g_dist`` [N] (zeros: none) times the ray's
    ``distortion``: d/d raw density [M] and d/d colour [Mc,3]."""
    nr = starts.shape[0] - 1
    g_raw = np.zeros(w.shape[0], np.float32)
    g_col = np.zeros(rgb_s.shape, np.float32)
    for r in prange(nr):
        g0, g1, g2 = g_rgb[r, 0], g_rgb[r, 1], g_rgb[r, 2]
        b0, b1, b2 = bg[r, 0], bg[r, 1], bg[r, 2]
        gd = g_dist[r]
        tot_w, tot_wm = 0.0, 0.0  # the distortion's sums over the whole ray
        if gd != 0.0:
            for k in range(starts[r], starts[r + 1]):
                tot_w += w[k]
                tot_wm += w[k] * 0.5 * (ray_s(t[k] - 0.5 * dt[k]) + ray_s(t[k] + 0.5 * dt[k]))
        suffix, after_w, after_wm = 0.0, 0.0, 0.0
        for k in range(starts[r + 1] - 1, starts[r] - 1, -1):
            c = colour_row[k]
            cdot = 0.0  # d loss / d w_k
            if c >= 0:
                cdot = (rgb_s[c, 0] - b0) * g0 + (rgb_s[c, 1] - b1) * g1 + (rgb_s[c, 2] - b2) * g2
                g_col[c, 0], g_col[c, 1], g_col[c, 2] = w[k] * g0, w[k] * g1, w[k] * g2
            if gd != 0.0:
                s0, s1 = ray_s(t[k] - 0.5 * dt[k]), ray_s(t[k] + 0.5 * dt[k])
                m = 0.5 * (s0 + s1)
                before_w, before_wm = tot_w - after_w - w[k], tot_wm - after_wm - w[k] * m
                cdot += gd * (2.0 * (m * before_w - before_wm + after_wm - m * after_w) + 2.0 * w[k] * (s1 - s0) / 3.0)
                after_w += w[k]
                after_wm += w[k] * m
            g_tau = trans[k] * math.exp(-tau[k]) * cdot - suffix
            suffix += w[k] * cdot
            x = raw[k] + shift
            g_raw[k] = g_tau * dt[k] * inv_ref / (1.0 + math.exp(-x))
    return g_raw, g_col


@njit(parallel=True, cache=True, nogil=True)
def gather(table, base, frac, dims):  # type: ignore[no-untyped-def]
    """Trilinear values [M, C] of a [rx*ry*rz, C] table at samples (corner base + fractions)."""
    m, ch = base.shape[0], table.shape[1]
    out = np.empty((m, ch), np.float32)
    sy = dims[2]
    sx = dims[1] * sy
    for i in prange(m):
        b = base[i]
        fx, fy, fz = frac[i, 0], frac[i, 1], frac[i, 2]
        for c in range(ch):
            out[i, c] = 0.0
        for k in range(8):
            wk = (fx if k & 4 else 1 - fx) * (fy if k & 2 else 1 - fy) * (fz if k & 1 else 1 - fz)
            row = b + (sx if k & 4 else 0) + (sy if k & 2 else 0) + (k & 1)
            for c in range(ch):
                out[i, c] += wk * table[row, c]
    return out


@njit(parallel=True, cache=True, nogil=True)
def scatter(grad, touched, base, frac, g, dims, parts):  # type: ignore[no-untyped-def]
    """grad[corner] += trilinear weight * g for every sample. Each thread owns a range of rows and adds
    in sample order, so the sums do not depend on the thread count (no races, repeatable runs)."""
    ch = grad.shape[1]
    sy = dims[2]
    sx = dims[1] * sy
    rows = grad.shape[0]
    for p in prange(parts):
        lo, hi = rows * p // parts, rows * (p + 1) // parts
        for i in range(base.shape[0]):
            b = base[i]
            if b + sx + sy + 1 < lo or b >= hi:
                continue
            fx, fy, fz = frac[i, 0], frac[i, 1], frac[i, 2]
            for k in range(8):
                row = b + (sx if k & 4 else 0) + (sy if k & 2 else 0) + (k & 1)
                if row < lo or row >= hi:
                    continue
                wk = (fx if k & 4 else 1 - fx) * (fy if k & 2 else 1 - fy) * (fz if k & 1 else 1 - fz)
                touched[row] = True
                for c in range(ch):
                    grad[row, c] += wk * g[i, c]


@njit(parallel=True, cache=True, nogil=True)
def occupancy(table, dims, raw_min):  # type: ignore[no-untyped-def]
    """Cells [(rx-1)(ry-1)(rz-1)] whose largest corner value exceeds ``raw_min``."""
    nx, ny, nz = dims[0] - 1, dims[1] - 1, dims[2] - 1
    occ = np.zeros(nx * ny * nz, np.bool_)
    for x in prange(nx):
        for y in range(ny):
            for z in range(nz):
                b = (x * dims[1] + y) * dims[2] + z
                occ[(x * ny + y) * nz + z] = cell_max(table, b, dims) > raw_min
    return occ


@njit(parallel=True, cache=True, nogil=True)
def masked_adam(table, exp_avg, exp_avg_sq, grad, touched, step, b1, b2, eps):  # type: ignore[no-untyped-def]
    """Adam on touched rows only; clears their gradient and flag."""
    ch = table.shape[1]
    for row in prange(table.shape[0]):
        if touched[row]:
            for c in range(ch):
                g = grad[row, c]
                m = exp_avg[row, c] * b1 + (1 - b1) * g
                v = exp_avg_sq[row, c] * b2 + (1 - b2) * g * g
                exp_avg[row, c], exp_avg_sq[row, c] = m, v
                table[row, c] -= step * m / (math.sqrt(v) + eps)
                grad[row, c] = 0.0
            touched[row] = False


@njit(inline="always", cache=True, nogil=True)
def cell_max(table, base, dims):  # type: ignore[no-untyped-def]
    sy = dims[2]
    b2 = base + dims[1] * sy
    v = max(table[base], table[base + 1], table[base + sy], table[base + sy + 1])
    return max(v, table[b2], table[b2 + 1], table[b2 + sy], table[b2 + sy + 1])


@njit(cache=True, nogil=True)
def propose(o, d, u, t0, s, ds, kc, occ, table, dims, lo, size, warp, frame, shift, inv_ref, t_stop, blend,  # type: ignore[no-untyped-def]
            edges_a, edges_b, w_c):
    """Coarse pass of one ray for ``march_proposal``: the densest corner of the cell at one jittered point per
    interval of ``kc`` fine steps -> interval bounds and weights (blended toward uniform). Returns the interval count, 0 when
    the ray crosses no occupied cell."""
    nx, ny, nz = dims[0] - 1, dims[1] - 1, dims[2] - 1
    nf = s.shape[0]
    nc = (nf + kc - 1) // kc
    trans, total, m = 1.0, 0.0, 0
    for i in range(nc):
        a, b = i * kc, min((i + 1) * kc, nf) - 1
        ta, tb = t0 + s[a], t0 + s[b] + ds[b]
        edges_a[m], edges_b[m], w_c[m] = ta, tb, 0.0
        m += 1
        ux, uy, uz = to_grid(o, d, ta + u * (tb - ta), lo, size, warp, frame)
        if ux < 0.0 or uy < 0.0 or uz < 0.0 or ux > 1.0 or uy > 1.0 or uz > 1.0:
            continue
        if not occ[(min(int(ux * nx), nx - 1) * ny + min(int(uy * ny), ny - 1)) * nz + min(int(uz * nz), nz - 1)]:
            continue
        base, fx, fy, fz = corner(ux, uy, uz, dims)
        # pdf mass: visibility so far times the opacity of the cell's densest corner, an upper bound, so a thin
        # surface between two coarse points is not stepped over; visibility itself uses the interpolated density
        x = cell_max(table, base, dims) + shift
        tau_max = (x if x > 20.0 else math.log1p(math.exp(x))) * inv_ref * (tb - ta)
        w_c[m - 1] = trans * (1.0 - math.exp(-tau_max))
        total += w_c[m - 1]
        x = interp1(table, base, fx, fy, fz, dims) + shift
        tau = (x if x > 20.0 else math.log1p(math.exp(x))) * inv_ref * (tb - ta)
        trans *= math.exp(-tau)
        if trans < t_stop:
            break
    if total <= 0.0:
        return 0
    for i in range(m):  # pdf over interval index: weights plus ``blend`` spread evenly, so no interval is never seen
        w_c[i] = (1.0 - blend) * w_c[i] / total + blend / m
    return m


@njit(cache=True, nogil=True)
def fine_walk(r, o, d, u, m, edges_a, edges_b, w_c, n_fine, occ, table, dims, lo, size, warp, frame, shift,  # type: ignore[no-untyped-def]
              inv_ref, t_stop, off, out_t, out_dt, out_base, out_frac, out_raw, out_tau, out_trans, out_w):
    """Fine pass of one ray: ``n_fine`` intervals between stratified quantiles of the coarse pdf (inverse
    CDF, linear inside a coarse interval), density at each interval's middle, compositing. Returns the
    number of samples written from ``off`` (samples in unoccupied cells are left out)."""
    nx, ny, nz = dims[0] - 1, dims[1] - 1, dims[2] - 1
    trans, count = 1.0, 0
    i, cdf = 0, 0.0
    prev = edges_a[0]
    for j in range(n_fine + 1):
        q = min((j + u) / (n_fine + 1.0), 1.0)
        while i < m - 1 and cdf + w_c[i] < q:
            cdf += w_c[i]
            i += 1
        f = min(max((q - cdf) / max(w_c[i], 1e-12), 0.0), 1.0)
        e = edges_a[i] + f * (edges_b[i] - edges_a[i])
        if j == 0:
            prev = e
            continue
        dt = e - prev
        t = 0.5 * (prev + e)
        prev = e
        if dt <= 0.0:
            continue
        ux, uy, uz = to_grid(o, d, t, lo, size, warp, frame)
        if ux < 0.0 or uy < 0.0 or uz < 0.0 or ux > 1.0 or uy > 1.0 or uz > 1.0:
            continue
        if not occ[(min(int(ux * nx), nx - 1) * ny + min(int(uy * ny), ny - 1)) * nz + min(int(uz * nz), nz - 1)]:
            continue
        base, fx, fy, fz = corner(ux, uy, uz, dims)
        raw = interp1(table, base, fx, fy, fz, dims)
        x = raw + shift
        tau = (x if x > 20.0 else math.log1p(math.exp(x))) * inv_ref * dt
        w = trans * (1.0 - math.exp(-tau))
        k = off + count
        out_t[k], out_dt[k], out_base[k] = t, dt, base
        out_frac[k, 0], out_frac[k, 1], out_frac[k, 2] = fx, fy, fz
        out_raw[k], out_tau[k], out_trans[k], out_w[k] = raw, tau, trans, w
        count += 1
        trans *= math.exp(-tau)
        if trans < t_stop:
            break
    return count


@njit(parallel=True, cache=True, nogil=True)
def march_proposal(origins, dirs, u, t0, s, ds, kc, n_fine, occ, table, dims, lo, size, warp, frame, shift,  # type: ignore[no-untyped-def]
                   inv_ref, t_stop, blend):
    """Unbounded scenes: ``n_fine`` samples per ray placed by a coarse density pass over the same grid
    (a density-only proposal, as mip-NeRF 360 / nerfacto place theirs), in the pack of ``march_density``."""
    nr = origins.shape[0]
    nf = s.shape[0]
    nc = (nf + kc - 1) // kc
    counts = np.zeros(nr, np.int64)
    cap = nr * n_fine
    t_w, dt_w = np.empty(cap, np.float32), np.empty(cap, np.float32)
    base_w, frac_w = np.empty(cap, np.int64), np.empty((cap, 3), np.float32)
    raw_w, tau_w = np.empty(cap, np.float32), np.empty(cap, np.float32)
    trans_w, w_w = np.empty(cap, np.float32), np.empty(cap, np.float32)
    for r in prange(nr):
        ea, eb, wc = np.empty(nc, np.float64), np.empty(nc, np.float64), np.empty(nc, np.float64)
        m = propose(origins[r], dirs[r], u[r], t0[r], s, ds, kc, occ, table, dims, lo, size, warp, frame, shift,
                    inv_ref, t_stop, blend, ea, eb, wc)
        if m > 0:
            counts[r] = fine_walk(r, origins[r], dirs[r], u[r], m, ea, eb, wc, n_fine, occ, table, dims, lo, size,
                                  warp, frame, shift, inv_ref, t_stop, r * n_fine, t_w, dt_w, base_w, frac_w, raw_w, tau_w,
                                  trans_w, w_w)
    starts = np.zeros(nr + 1, np.int64)
    for r in range(nr):
        starts[r + 1] = starts[r] + counts[r]
    total = starts[nr]
    ray_idx = np.empty(total, np.int64)
    t_out, dt_out = np.empty(total, np.float32), np.empty(total, np.float32)
    base_out, frac_out = np.empty(total, np.int64), np.empty((total, 3), np.float32)
    raw_out, tau_out = np.empty(total, np.float32), np.empty(total, np.float32)
    trans_out, w_out = np.empty(total, np.float32), np.empty(total, np.float32)
    for r in prange(nr):
        src = r * n_fine
        for k in range(counts[r]):
            j = starts[r] + k
            ray_idx[j] = r
            t_out[j], dt_out[j], base_out[j] = t_w[src + k], dt_w[src + k], base_w[src + k]
            frac_out[j, 0], frac_out[j, 1], frac_out[j, 2] = frac_w[src + k, 0], frac_w[src + k, 1], frac_w[src + k, 2]
            raw_out[j], tau_out[j], trans_out[j], w_out[j] = raw_w[src + k], tau_w[src + k], trans_w[src + k], w_w[src + k]
    return starts, ray_idx, t_out, dt_out, base_out, frac_out, raw_out, tau_out, trans_out, w_out
