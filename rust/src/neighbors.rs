//! Full periodic neighbour lists by cell lists (binning in fractional coordinates).
//!
//! Semantics follow `ase.neighborlist.neighbor_list`: every ordered pair (i, j, S) with
//! `D = r_j - r_i + S·cell`, `|D| < cutoff`, except i == j with S == 0. Triclinic cells, mixed
//! periodic boundary conditions, cells smaller than the cutoff (many images) and molecules
//! (no periodic direction, any or no cell) are handled. Work is O(N) per structure.

use crate::linalg::{cross, det3, dot, inv3, norm, Mat3, Vec3};
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

/// Pairs of one structure, sorted by the first index `i`.
#[derive(Clone, Debug, Default)]
pub struct Pairs {
    pub i: Vec<i64>,
    pub j: Vec<i64>,
    /// Integer cell shifts S (only when requested).
    pub shift: Vec<[i64; 3]>,
    /// Distances |D| in Å (only when requested).
    pub distance: Vec<f64>,
    /// Vectors D = r_j − r_i + S·cell in Å (only when requested).
    pub vector: Vec<Vec3>,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.i.len()
    }
    pub fn is_empty(&self) -> bool {
        self.i.is_empty()
    }
    fn append(&mut self, mut other: Pairs) {
        self.i.append(&mut other.i);
        self.j.append(&mut other.j);
        self.shift.append(&mut other.shift);
        self.distance.append(&mut other.distance);
        self.vector.append(&mut other.vector);
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
    /// Wrapped Cartesian positions (inside the cell along periodic directions).
    wrapped: Vec<Vec3>,
    /// Integer image of each atom: r = wrapped + image·cell.
    image: Vec<[i64; 3]>,
    bin_of: Vec<usize>,
    bin_start: Vec<usize>,
    bin_atoms: Vec<usize>,
    /// Expected neighbours per atom at the mean density (0 when not fully periodic), to size outputs.
    pairs_per_atom: f64,
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
        for k in 0..nb_total {
            counts[k + 1] += counts[k];
        }
        let bin_start = counts.clone();
        let mut fill = counts;
        let mut bin_atoms = vec![0usize; n];
        for (a, &b) in bin_of.iter().enumerate() {
            bin_atoms[fill[b]] = a;
            fill[b] += 1;
        }
        let wrapped = frac
            .iter()
            .map(|f| {
                let mut r = [0.0; 3];
                for c in 0..3 {
                    r[c] = f[0] * cell[0][c] + f[1] * cell[1][c] + f[2] * cell[2][c];
                }
                r
            })
            .collect();
        let pairs_per_atom = if frame.pbc.iter().all(|&p| p) {
            n as f64 / volume * 4.0 / 3.0 * std::f64::consts::PI * cutoff.powi(3)
        } else {
            0.0
        };
        Grid { cell, nbins, reach, wrapped, image, bin_of, bin_start, bin_atoms, pairs_per_atom }
    }

    fn bin_coords(&self, idx: usize) -> [i64; 3] {
        let b2 = idx % self.nbins[2];
        let b1 = (idx / self.nbins[2]) % self.nbins[1];
        let b0 = idx / (self.nbins[1] * self.nbins[2]);
        [b0 as i64, b1 as i64, b2 as i64]
    }
}

/// Pairs whose first atom lies in `atoms` (a contiguous range, so output stays sorted by i).
fn pairs_of(
    frame: &Frame,
    grid: &Grid,
    cutoff: f64,
    want: Want,
    atoms: std::ops::Range<usize>,
) -> Pairs {
    let mut out = Pairs::default();
    let guess = (atoms.len() as f64 * grid.pairs_per_atom * 1.1) as usize;
    out.i.reserve(guess);
    out.j.reserve(guess);
    if want.shift {
        out.shift.reserve(guess);
    }
    if want.distance {
        out.distance.reserve(guess);
    }
    if want.vector {
        out.vector.reserve(guess);
    }
    let cut2 = cutoff * cutoff;
    let loose2 = cut2 * (1.0 + 1e-9) + 1e-12;
    let cell = &frame.cell;
    let pbc = frame.pbc;
    for i in atoms {
        let bi = grid.bin_coords(grid.bin_of[i]);
        let ri = grid.wrapped[i];
        let mut range = [(0i64, 0i64); 3];
        for c in 0..3 {
            range[c] = (bi[c] - grid.reach[c], bi[c] + grid.reach[c]);
            if !pbc[c] {
                range[c] = (range[c].0.max(0), range[c].1.min(grid.nbins[c] as i64 - 1));
            }
        }
        for t0 in range[0].0..=range[0].1 {
            for t1 in range[1].0..=range[1].1 {
                for t2 in range[2].0..=range[2].1 {
                    let t = [t0, t1, t2];
                    let mut s = [0i64; 3];
                    let mut b = [0usize; 3];
                    for c in 0..3 {
                        let nb = grid.nbins[c] as i64;
                        b[c] = t[c].rem_euclid(nb) as usize;
                        s[c] = t[c].div_euclid(nb);
                    }
                    // Cartesian offset of the image block, in the binning cell
                    let mut off = [0.0; 3];
                    for c in 0..3 {
                        off[c] = s[0] as f64 * grid.cell[0][c]
                            + s[1] as f64 * grid.cell[1][c]
                            + s[2] as f64 * grid.cell[2][c];
                    }
                    let bidx = (b[0] * grid.nbins[1] + b[1]) * grid.nbins[2] + b[2];
                    for &j in &grid.bin_atoms[grid.bin_start[bidx]..grid.bin_start[bidx + 1]] {
                        if i == j && s == [0, 0, 0] {
                            continue;
                        }
                        let rj = grid.wrapped[j];
                        let dw = [rj[0] + off[0] - ri[0], rj[1] + off[1] - ri[1], rj[2] + off[2] - ri[2]];
                        if dot(&dw, &dw) >= loose2 {
                            continue;
                        }
                        // exact vector from the original positions, as ASE computes it
                        let (ki, kj) = (grid.image[i], grid.image[j]);
                        let shift = [s[0] + ki[0] - kj[0], s[1] + ki[1] - kj[1], s[2] + ki[2] - kj[2]];
                        let (pi, pj) = (frame.positions[i], frame.positions[j]);
                        let mut d = [0.0; 3];
                        for c in 0..3 {
                            d[c] = pj[c] - pi[c]
                                + shift[0] as f64 * cell[0][c]
                                + shift[1] as f64 * cell[1][c]
                                + shift[2] as f64 * cell[2][c];
                        }
                        let d2 = dot(&d, &d);
                        if d2 >= cut2 {
                            continue;
                        }
                        out.i.push(i as i64);
                        out.j.push(j as i64);
                        if want.shift {
                            out.shift.push(shift);
                        }
                        if want.distance {
                            out.distance.push(d2.sqrt());
                        }
                        if want.vector {
                            out.vector.push(d);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Neighbour list of one structure; `parallel` splits its atoms over the rayon pool.
pub fn neighbor_list(frame: &Frame, cutoff: f64, want: Want, parallel: bool) -> Result<Pairs, String> {
    let cell = checked_cell(frame, cutoff)?;
    let n = frame.positions.len();
    if n == 0 || cutoff == 0.0 {
        return Ok(Pairs::default());
    }
    let grid = Grid::new(frame, cell, cutoff);
    let chunk = 256;
    if !parallel || n <= chunk {
        return Ok(pairs_of(frame, &grid, cutoff, want, 0..n));
    }
    let parts: Vec<Pairs> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|k| pairs_of(frame, &grid, cutoff, want, k * chunk..((k + 1) * chunk).min(n)))
        .collect();
    let mut out = Pairs::default();
    for p in parts {
        out.append(p);
    }
    Ok(out)
}

/// Neighbour lists of many structures: rayon over structures when there are enough of them,
/// over atoms otherwise. The first error (by structure index) is returned, naming the structure.
pub fn neighbor_lists(frames: &[Frame], cutoff: f64, want: Want) -> Result<Vec<Pairs>, String> {
    let threads = rayon::current_num_threads();
    let by_structure = frames.len() >= 2 * threads;
    let run = |(k, f): (usize, &Frame)| {
        neighbor_list(f, cutoff, want, !by_structure).map_err(|e| format!("structure {k}: {e}"))
    };
    if by_structure {
        frames.par_iter().enumerate().map(run).collect()
    } else {
        frames.iter().enumerate().map(run).collect()
    }
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
            let mut got: Vec<_> = (0..p.len()).map(|k| (p.i[k], p.j[k], p.shift[k])).collect();
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
