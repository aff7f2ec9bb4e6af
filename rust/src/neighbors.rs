//! Full periodic neighbour lists by cell lists (binning in fractional coordinates).
//!
//! Semantics follow `ase.neighborlist.neighbor_list`: every ordered pair (i, j, S) with
//! `D = r_j - r_i + S·cell`, `|D| < cutoff`, except i == j with S == 0. Triclinic cells, mixed
//! periodic boundary conditions, cells smaller than the cutoff (many images) and molecules
//! (no periodic direction, any or no cell) are handled. Work is O(N) per structure.

use crate::linalg::{cross, det3, dot, inv3, norm, Mat3, Vec3};
use crate::recycle::{self, concat, Recycled};
use rayon::prelude::*;

/// Which outputs to fill (`"ijSdD"` in ASE's notation); i and j are always filled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Want {
    pub shift: bool,
    pub distance: bool,
    pub vector: bool,
}

impl Want {
    pub fn all() -> Self {
        Want { shift: true, distance: true, vector: true }
    }
    /// Parse ASE's quantity letters; unknown letters are an error.
    pub fn parse(quantities: &str) -> Result<Self, String> {
        let mut w = Want::default();
        for c in quantities.chars() {
            match c {
                'i' | 'j' => {}
                'S' => w.shift = true,
                'd' => w.distance = true,
                'D' => w.vector = true,
                _ => {
                    return Err(format!(
                        "unknown neighbour-list quantity {c:?} in {quantities:?}; use letters of \"ijSdD\""
                    ))
                }
            }
        }
        Ok(w)
    }
}

/// Pairs of one or more structures, sorted by the first index `i` within each structure.
#[derive(Clone, Debug, Default)]
pub struct Pairs {
    pub i: Vec<i64>,
    pub j: Vec<i64>,
    /// Integer cell shifts S, three a pair, flat (only when requested).
    pub shift: Vec<i64>,
    /// Distances |D| in Å (only when requested).
    pub distance: Vec<f64>,
    /// Vectors D = r_j − r_i + S·cell in Å, three a pair, flat (only when requested).
    pub vector: Vec<f64>,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.i.len()
    }
    pub fn is_empty(&self) -> bool {
        self.i.is_empty()
    }
    /// D of pair p (needs `vector`).
    #[inline]
    pub fn vector_of(&self, p: usize) -> Vec3 {
        [self.vector[3 * p], self.vector[3 * p + 1], self.vector[3 * p + 2]]
    }
    /// Empty, with room for `n` pairs in every requested output.
    fn with_capacity(n: usize, want: Want) -> Pairs {
        fn room<T: Recycled>(on: bool, len: usize) -> Vec<T> {
            if on {
                recycle::take(len)
            } else {
                Vec::new()
            }
        }
        Pairs {
            i: recycle::take(n),
            j: recycle::take(n),
            shift: room(want.shift, 3 * n),
            distance: room(want.distance, n),
            vector: room(want.vector, 3 * n),
        }
    }
    #[inline(always)]
    fn push(&mut self, i: usize, j: usize, shift: [i64; 3], d2: f64, d: Vec3, want: Want) {
        self.i.push(i as i64);
        self.j.push(j as i64);
        if want.shift {
            self.shift.extend_from_slice(&shift);
        }
        if want.distance {
            self.distance.push(d2.sqrt());
        }
        if want.vector {
            self.vector.extend_from_slice(&d);
        }
    }
    /// `parts` one after the other (moved when there is one, else copied, in parallel if asked).
    fn concat(mut parts: Vec<Pairs>, parallel: bool) -> Pairs {
        if parts.len() <= 1 {
            return parts.pop().unwrap_or_default();
        }
        let out = Pairs {
            i: concat(parts.iter().map(|p| &p.i[..]).collect(), parallel),
            j: concat(parts.iter().map(|p| &p.j[..]).collect(), parallel),
            shift: concat(parts.iter().map(|p| &p.shift[..]).collect(), parallel),
            distance: concat(parts.iter().map(|p| &p.distance[..]).collect(), parallel),
            vector: concat(parts.iter().map(|p| &p.vector[..]).collect(), parallel),
        };
        for p in parts {
            p.recycle();
        }
        out
    }
    /// Hand the buffers to `recycle` for later outputs.
    fn recycle(self) {
        recycle::give(self.i);
        recycle::give(self.j);
        recycle::give(self.shift);
        recycle::give(self.distance);
        recycle::give(self.vector);
    }
}

/// One structure: Cartesian positions (Å), cell rows (Å), periodicity per lattice direction.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub positions: &'a [Vec3],
    pub cell: Mat3,
    pub pbc: [bool; 3],
}

/// Check positions and cutoff; return a cell whose non-periodic rows are replaced by unit vectors
/// orthogonal to the periodic ones (only binning uses them; shifts along them are always 0).
pub fn checked_cell(frame: &Frame, cutoff: f64) -> Result<Mat3, String> {
    if !cutoff.is_finite() || cutoff < 0.0 {
        return Err(format!("cutoff must be a finite, non-negative distance in Å; got {cutoff}"));
    }
    if let Some(a) = frame.positions.iter().position(|r| !r.iter().all(|x| x.is_finite())) {
        return Err(format!("position of atom {a} is not finite: {:?}", frame.positions[a]));
    }
    if !frame.cell.iter().flatten().all(|x| x.is_finite()) {
        return Err(format!("cell is not finite: {:?}", frame.cell));
    }
    let periodic: Vec<usize> = (0..3).filter(|&c| frame.pbc[c]).collect();
    let mut cell = frame.cell;
    let singular = || {
        format!(
            "cell {:?} is singular along its periodic directions (pbc = {:?}); give three \
             independent lattice vectors or switch pbc off along the missing ones",
            frame.cell, frame.pbc
        )
    };
    let unit = |v: Vec3| -> Option<Vec3> {
        let n = norm(&v);
        (n > 1e-12).then(|| [v[0] / n, v[1] / n, v[2] / n])
    };
    match periodic.len() {
        0 => cell = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        1 => {
            let a = unit(cell[periodic[0]]).ok_or_else(singular)?;
            // any vector not parallel to a, made orthogonal
            let trial = if a[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
            let n1 = unit(cross(&a, &trial)).unwrap();
            let n2 = cross(&a, &n1);
            let mut others = (0..3).filter(|&c| !frame.pbc[c]);
            cell[others.next().unwrap()] = n1;
            cell[others.next().unwrap()] = n2;
        }
        2 => {
            let (a, b) = (cell[periodic[0]], cell[periodic[1]]);
            let scale = norm(&a) * norm(&b);
            let n = cross(&a, &b);
            if norm(&n) <= 1e-10 * scale || scale == 0.0 {
                return Err(singular());
            }
            let c = (0..3).find(|&c| !frame.pbc[c]).unwrap();
            cell[c] = unit(n).unwrap();
        }
        _ => {
            let scale = norm(&cell[0]) * norm(&cell[1]) * norm(&cell[2]);
            if scale == 0.0 || det3(&cell).abs() <= 1e-10 * scale {
                return Err(singular());
            }
        }
    }
    Ok(cell)
}

/// Binning of one structure in fractional coordinates.
struct Grid {
    cell: Mat3,
    nbins: [usize; 3],
    reach: [i64; 3],
    /// Per direction c, for every bin offset t the search reaches (t = `wrap_lo[c]` + index):
    /// the bin t falls in and the cell shift that brings it there.
    wrap: [Vec<(usize, i64)>; 3],
    wrap_lo: [i64; 3],
    /// Wrapped Cartesian positions (inside the cell along periodic directions).
    wrapped: Vec<Vec3>,
    /// Integer image of each atom: r = wrapped + image·cell.
    image: Vec<[i64; 3]>,
    bin_of: Vec<usize>,
    /// Bin b holds slots bin_start[b] .. bin_start[b] + bin_len of `bin_atoms` and `sorted`.
    bin_start: Vec<usize>,
    /// Slots per bin: the fullest bin's count when every bin is padded to it (then the screening loop
    /// has a fixed trip count, which the branch predictor learns), 0 when bins are packed (too uneven).
    padded_len: usize,
    /// Atom of each slot (usize::MAX in padding), and the wrapped coordinates in slot order, one array
    /// per axis (infinite in padding, so padding never passes the distance test).
    bin_atoms: Vec<usize>,
    sorted: [Vec<f64>; 3],
    /// Most atoms in one bin.
    max_bin: usize,
}

impl Grid {
    fn new(frame: &Frame, cell: Mat3, cutoff: f64) -> Grid {
        let n = frame.positions.len();
        let inv = inv3(&cell);
        let volume = det3(&cell).abs();
        let mut frac = vec![[0.0; 3]; n];
        let mut image = vec![[0i64; 3]; n];
        for (a, r) in frame.positions.iter().enumerate() {
            for c in 0..3 {
                let f = r[0] * inv[0][c] + r[1] * inv[1][c] + r[2] * inv[2][c];
                if frame.pbc[c] {
                    let k = f.floor();
                    let mut w = f - k;
                    let mut k = k as i64;
                    if w >= 1.0 {
                        w = 0.0;
                        k += 1;
                    }
                    frac[a][c] = w;
                    image[a][c] = k;
                } else {
                    frac[a][c] = f;
                }
            }
        }
        // Per direction: lower bound and span in fractional units, plane spacing (height) in Å.
        let mut lo = [0.0; 3];
        let mut span = [1.0; 3];
        let mut height = [0.0; 3];
        let mut nbins = [1usize; 3];
        for c in 0..3 {
            height[c] = volume / norm(&cross(&cell[(c + 1) % 3], &cell[(c + 2) % 3]));
            if !frame.pbc[c] {
                let (mn, mx) = frac
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(mn, mx), f| (mn.min(f[c]), mx.max(f[c])));
                lo[c] = if n > 0 { mn } else { 0.0 };
                span[c] = if n > 0 { mx - mn } else { 0.0 };
            }
            let length = span[c] * height[c];
            if cutoff > 0.0 && length > cutoff {
                nbins[c] = ((length / cutoff).floor() as usize).max(1);
            }
        }
        // Bound the number of bins (sparse molecules spread over a large box).
        let limit = (4 * n).max(64);
        while nbins.iter().product::<usize>() > limit {
            let c = (0..3).max_by_key(|&c| nbins[c]).unwrap();
            nbins[c] = (nbins[c] / 2).max(1);
        }
        let mut reach = [0i64; 3];
        let mut width = [1.0; 3];
        for c in 0..3 {
            width[c] = if span[c] > 0.0 { span[c] / nbins[c] as f64 } else { 1.0 };
            let w_ang = width[c] * height[c];
            reach[c] = if span[c] > 0.0 { (cutoff / w_ang).ceil().max(1.0) as i64 } else { 0 };
            if !frame.pbc[c] {
                reach[c] = reach[c].min(nbins[c] as i64 - 1);
            }
        }
        let nb_total = nbins.iter().product::<usize>();
        let mut bin_of = vec![0usize; n];
        let mut counts = vec![0usize; nb_total + 1];
        for (a, f) in frac.iter().enumerate() {
            let mut b = [0usize; 3];
            for c in 0..3 {
                let x = ((f[c] - lo[c]) / width[c]).floor();
                b[c] = (x.max(0.0) as usize).min(nbins[c] - 1);
            }
            let idx = (b[0] * nbins[1] + b[1]) * nbins[2] + b[2];
            bin_of[a] = idx;
            counts[idx + 1] += 1;
        }
        let max_bin = counts.iter().copied().max().unwrap_or(0);
        // pad every bin to the fullest one unless that more than doubles the slots
        let padded_len = if nb_total * max_bin <= 2 * n + 64 { max_bin } else { 0 };
        if padded_len > 0 {
            counts.iter_mut().skip(1).for_each(|c| *c = padded_len);
        }
        for k in 0..nb_total {
            counts[k + 1] += counts[k];
        }
        let bin_start = counts.clone();
        let slots = counts[nb_total];
        let mut fill = counts;
        let mut bin_atoms = vec![usize::MAX; slots];
        for (a, &b) in bin_of.iter().enumerate() {
            bin_atoms[fill[b]] = a;
            fill[b] += 1;
        }
        let wrapped: Vec<Vec3> = frac
            .iter()
            .map(|f| {
                let mut r = [0.0; 3];
                for c in 0..3 {
                    r[c] = f[0] * cell[0][c] + f[1] * cell[1][c] + f[2] * cell[2][c];
                }
                r
            })
            .collect();
        let sorted = [0, 1, 2].map(|c| bin_atoms.iter().map(|&a| wrapped.get(a).map_or(f64::INFINITY, |r| r[c])).collect());
        let wrap_lo = [0, 1, 2].map(|c| -reach[c]);
        let wrap = [0, 1, 2].map(|c| {
            let nb = nbins[c] as i64;
            (-reach[c]..nb + reach[c]).map(|t| (t.rem_euclid(nb) as usize, t.div_euclid(nb))).collect()
        });
        Grid {
            cell,
            nbins,
            reach,
            wrap,
            wrap_lo,
            wrapped,
            image,
            bin_of,
            bin_start,
            padded_len,
            bin_atoms,
            sorted,
            max_bin,
        }
    }

    fn bin_coords(&self, idx: usize) -> [i64; 3] {
        let b2 = idx % self.nbins[2];
        let b1 = (idx / self.nbins[2]) % self.nbins[1];
        let b0 = idx / (self.nbins[1] * self.nbins[2]);
        [b0 as i64, b1 as i64, b2 as i64]
    }

    /// Slots of bin b.
    #[inline]
    fn slots(&self, b: usize) -> std::ops::Range<usize> {
        let lo = self.bin_start[b];
        lo..if self.padded_len > 0 { lo + self.padded_len } else { self.bin_start[b + 1] }
    }

    /// Image blocks (bin + shift) searched around one atom, at most.
    fn max_blocks(&self) -> usize {
        (0..3).map(|c| (2 * self.reach[c] + 1) as usize).product()
    }

    /// Bin offsets t (per direction) that the search around bin coordinate `b` visits.
    fn search_range(&self, b: i64, c: usize, periodic: bool) -> std::ops::RangeInclusive<i64> {
        let (lo, hi) = (b - self.reach[c], b + self.reach[c]);
        if periodic {
            lo..=hi
        } else {
            lo.max(0)..=hi.min(self.nbins[c] as i64 - 1)
        }
    }
}

/// Append to `out` the pairs whose first atom lies in `atoms` (a contiguous range, so the pairs come
/// sorted by i).
///
/// Around each atom, every image block (bin + cell shift) within reach is screened with the wrapped
/// positions, branch-free, into a short list of candidates; those get the exact vector
/// D = r_j − r_i + S·cell from the original positions, as ASE computes it, and the exact test.
fn pairs_of(frame: &Frame, grid: &Grid, cutoff: f64, want: Want, atoms: std::ops::Range<usize>, out: &mut Pairs) {
    let cut2 = cutoff * cutoff;
    let loose2 = cut2 * (1.0 + 1e-9) + 1e-12;
    let cell = &frame.cell;
    let [xs, ys, zs] = &grid.sorted;
    // per atom: the image blocks visited (their shifts) and the candidates that passed, (slot, block)
    let mut shifts = Vec::with_capacity(grid.max_blocks());
    let mut hits = vec![(0u32, 0u32); grid.max_blocks() * grid.max_bin];
    let mut d2 = vec![0.0; grid.max_bin];
    for i in atoms {
        let bi = grid.bin_coords(grid.bin_of[i]);
        let ri = grid.wrapped[i];
        shifts.clear();
        let mut found = 0;
        for t0 in grid.search_range(bi[0], 0, frame.pbc[0]) {
            let (b0, s0) = grid.wrap[0][(t0 - grid.wrap_lo[0]) as usize];
            for t1 in grid.search_range(bi[1], 1, frame.pbc[1]) {
                let (b1, s1) = grid.wrap[1][(t1 - grid.wrap_lo[1]) as usize];
                for t2 in grid.search_range(bi[2], 2, frame.pbc[2]) {
                    let (b2, s2) = grid.wrap[2][(t2 - grid.wrap_lo[2]) as usize];
                    // where atom i sits relative to the image block (binning cell)
                    let mut o = [0.0; 3];
                    for c in 0..3 {
                        o[c] = ri[c]
                            - (s0 as f64 * grid.cell[0][c] + s1 as f64 * grid.cell[1][c] + s2 as f64 * grid.cell[2][c]);
                    }
                    let block = shifts.len() as u32;
                    shifts.push([s0, s1, s2]);
                    let slots = grid.slots((b0 * grid.nbins[1] + b1) * grid.nbins[2] + b2);
                    let lo = slots.start;
                    let d2 = &mut d2[..slots.len()];
                    for (((d2, x), y), z) in d2.iter_mut().zip(&xs[slots.clone()]).zip(&ys[slots.clone()]).zip(&zs[slots]) {
                        let d = [x - o[0], y - o[1], z - o[2]];
                        *d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                    }
                    for (k, &d2) in d2.iter().enumerate() {
                        hits[found] = ((lo + k) as u32, block);
                        found += usize::from(d2 < loose2);
                    }
                }
            }
        }
        let (ki, pi) = (grid.image[i], frame.positions[i]);
        for &(slot, block) in &hits[..found] {
            let j = grid.bin_atoms[slot as usize];
            let s = shifts[block as usize];
            if i == j && s == [0, 0, 0] {
                continue;
            }
            let kj = grid.image[j];
            let shift = [s[0] + ki[0] - kj[0], s[1] + ki[1] - kj[1], s[2] + ki[2] - kj[2]];
            let pj = frame.positions[j];
            let mut d = [0.0; 3];
            for c in 0..3 {
                d[c] = pj[c] - pi[c] + shift[0] as f64 * cell[0][c] + shift[1] as f64 * cell[1][c] + shift[2] as f64 * cell[2][c];
            }
            let d2 = dot(&d, &d);
            if d2 < cut2 {
                out.push(i, j, shift, d2, d, want);
            }
        }
    }
}

/// Pairs expected in a structure at its mean density (periodic cells; 0 otherwise), to size outputs.
fn expected_pairs(frame: &Frame, cutoff: f64) -> usize {
    let n = frame.positions.len() as f64;
    let volume = det3(&frame.cell).abs();
    if !frame.pbc.iter().all(|&p| p) || volume <= 0.0 {
        return 0;
    }
    (1.1 * n * n / volume * 4.0 / 3.0 * std::f64::consts::PI * cutoff.powi(3)) as usize + 16
}

/// Atoms per parallel task when one structure is split over the rayon pool.
const ATOM_CHUNK: usize = 256;

/// Neighbour list of one structure; `parallel` splits its atoms over the rayon pool.
pub fn neighbor_list(frame: &Frame, cutoff: f64, want: Want, parallel: bool) -> Result<Pairs, String> {
    let n = frame.positions.len();
    if !parallel || n <= ATOM_CHUNK {
        let mut out = Pairs::with_capacity(expected_pairs(frame, cutoff), want);
        append_pairs(frame, cutoff, want, &mut out)?;
        return Ok(out);
    }
    let cell = checked_cell(frame, cutoff)?;
    let grid = Grid::new(frame, cell, cutoff);
    let per_atom = expected_pairs(frame, cutoff) / n;
    let parts = (0..n.div_ceil(ATOM_CHUNK))
        .into_par_iter()
        .map(|k| {
            let atoms = k * ATOM_CHUNK..((k + 1) * ATOM_CHUNK).min(n);
            let mut out = Pairs::with_capacity(per_atom * atoms.len(), want);
            pairs_of(frame, &grid, cutoff, want, atoms, &mut out);
            out
        })
        .collect();
    Ok(Pairs::concat(parts, true))
}

/// Append the pairs of one structure to `out`, on this thread.
fn append_pairs(frame: &Frame, cutoff: f64, want: Want, out: &mut Pairs) -> Result<(), String> {
    let cell = checked_cell(frame, cutoff)?;
    let n = frame.positions.len();
    if n > 0 && cutoff > 0.0 {
        pairs_of(frame, &Grid::new(frame, cell, cutoff), cutoff, want, 0..n, out);
    }
    Ok(())
}

/// Neighbour lists of many structures, concatenated in structure order, and the pair count of each,
/// on `threads` threads (the current rayon pool's when more than 1; 1 makes no rayon calls).
///
/// With enough structures, contiguous groups of them run as rayon tasks, each appending straight
/// into its own output (on one thread: a single group, so the pairs are written once, in place); with
/// few structures, the atoms of each are split instead. The first error (by structure index) is
/// returned, naming the structure.
pub fn neighbor_lists(frames: &[Frame], cutoff: f64, want: Want, threads: usize) -> Result<(Pairs, Vec<i64>), String> {
    let named = |k: usize| move |e: String| format!("structure {k}: {e}");
    let parallel = threads > 1;
    if frames.len() < 2 * threads {
        let parts = frames
            .iter()
            .enumerate()
            .map(|(k, f)| neighbor_list(f, cutoff, want, parallel).map_err(named(k)))
            .collect::<Result<Vec<_>, _>>()?;
        let counts = parts.iter().map(|p| p.len() as i64).collect();
        return Ok((Pairs::concat(parts, parallel), counts));
    }
    // a few groups per thread balance uneven structures
    let groups = if parallel { (8 * threads).min(frames.len()) } else { 1 };
    let bounds: Vec<usize> = (0..=groups).map(|g| g * frames.len() / groups).collect();
    let group = |g: usize| {
        let range = bounds[g]..bounds[g + 1];
        let expected = frames[range.clone()].iter().map(|f| expected_pairs(f, cutoff)).sum();
        let mut out = Pairs::with_capacity(expected, want);
        let mut counts = Vec::with_capacity(range.len());
        for k in range {
            let before = out.len();
            append_pairs(&frames[k], cutoff, want, &mut out).map_err(named(k))?;
            counts.push((out.len() - before) as i64);
        }
        Ok((out, counts))
    };
    let parts = if parallel {
        (0..groups).into_par_iter().map(group).collect::<Result<Vec<_>, String>>()?
    } else {
        (0..groups).map(group).collect::<Result<Vec<_>, String>>()?
    };
    let counts = parts.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    Ok((Pairs::concat(parts.into_iter().map(|(p, _)| p).collect(), parallel), counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(frame: &Frame, cutoff: f64) -> Vec<(i64, i64, [i64; 3])> {
        let n = frame.positions.len();
        let reach = 3;
        let mut out = vec![];
        for i in 0..n {
            for j in 0..n {
                for a in -reach..=reach {
                    for b in -reach..=reach {
                        for c in -reach..=reach {
                            let s = [a, b, c];
                            if (0..3).any(|k| !frame.pbc[k] && s[k] != 0) || (i == j && s == [0, 0, 0]) {
                                continue;
                            }
                            let mut d = [0.0; 3];
                            for k in 0..3 {
                                d[k] = frame.positions[j][k] - frame.positions[i][k]
                                    + (0..3).map(|m| s[m] as f64 * frame.cell[m][k]).sum::<f64>();
                            }
                            if dot(&d, &d) < cutoff * cutoff {
                                out.push((i as i64, j as i64, s));
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn matches_brute_force_on_skewed_cell() {
        let positions = vec![[0.1, 0.2, 0.3], [1.5, -0.4, 2.2], [3.9, 1.1, 0.7], [-2.0, 5.0, 1.0]];
        let cell = [[3.0, 0.0, 0.0], [1.2, 2.8, 0.0], [0.5, -0.7, 3.3]];
        for pbc in [[true, true, true], [true, false, true], [false, false, false]] {
            let frame = Frame { positions: &positions, cell, pbc };
            let p = neighbor_list(&frame, 3.1, Want::all(), false).unwrap();
            let mut got: Vec<_> =
                (0..p.len()).map(|k| (p.i[k], p.j[k], [p.shift[3 * k], p.shift[3 * k + 1], p.shift[3 * k + 2]])).collect();
            got.sort();
            assert_eq!(got, brute(&frame, 3.1), "pbc {pbc:?}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        let positions = vec![[0.0, f64::NAN, 0.0]];
        let frame = Frame { positions: &positions, cell: [[1.0, 0.0, 0.0]; 3], pbc: [false; 3] };
        assert!(neighbor_list(&frame, 1.0, Want::all(), false).unwrap_err().contains("atom 0"));
        let positions = vec![[0.0; 3]];
        let frame = Frame { positions: &positions, cell: [[1.0, 0.0, 0.0]; 3], pbc: [true; 3] };
        assert!(neighbor_list(&frame, 1.0, Want::all(), false).unwrap_err().contains("singular"));
        assert!(neighbor_list(&frame, -1.0, Want::all(), false).unwrap_err().contains("cutoff"));
    }
}
