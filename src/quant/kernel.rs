//! int8 products: `out[r][o] = sum_k x[r][k] * w[o][k]` over int8 values held
//! widened to i16, accumulated in i32. Rows of `x` are padded with a zero to an
//! even length; the weights are packed once ([`Packed`]) into panels of 32
//! outputs, k-pair-major: for each pair (k, k+1), the 32 outputs' two weights
//! side by side. A kernel broadcasts one row's pair (x[k], x[k+1]) as one 32-bit
//! value and multiplies it into a whole panel row at once, so the i32 lanes of
//! its accumulators *are* outputs: no horizontal sums, and each weight vector
//! loaded serves four rows.
//!
//! Three kernels: AVX-512 VNNI (`vpdpbusd`: u8 x i8 quads, 64 products per
//! instruction; the inputs are shifted by +128 into u8 and the shift's share,
//! 128 * sum of the weight row, is taken off again, exactly; weights packed a
//! second time as i8 quads; tiles of 4 rows x 32 outputs in 8 registers), AVX2
//! (`vpmaddwd` + add on the i16 pairs: 4 rows x 16 outputs) and a portable one
//! in plain Rust over the pairs (it compiles to NEON or SSE as the compiler sees
//! fit). AVX2 has no exact u8 x i8 product (`vpmaddubsw` saturates in i16),
//! hence its i16 path.
//! `TRAINLAB_INT8=portable|avx2` (or `TRAINLAB_SIMD`) forces a lower one on any
//! machine, so their paths are tested and measured on this one too.
//!
//! The fused path ([`gemm_codes`]) takes activations as one byte a value (the
//! i8 code, or for VNNI the code + 128, [`Int8Kernel::code_bias`]) in rows of
//! whole quads, and hands each tile of sums to a [`TileSink`], normally an
//! [`Epilogue`] that rescales, adds the bias, applies ReLU and writes f32 or
//! the next layer's codes while the tile is in registers and cache. VNNI runs
//! it in tiles of 8 rows x 32 outputs straight off the bytes; AVX2 and portable
//! widen each tile's rows to i16 once and reuse their pair kernels.
//!
//! Contract: every kernel gives exactly the same sums (integer arithmetic);
//! inputs are at most 127 in magnitude, so no i16 product pair can overflow.

/// Row lengths are padded to a multiple of this (whole k pairs).
pub const K_ALIGN: usize = 2;
/// Outputs per packed panel: two AVX-512 vectors of i32.
pub const PANEL: usize = 32;
/// Rows per register tile (and per [`TileSink::tile`] call).
pub const TILE_ROWS: usize = 4;

/// `n` rounded up to a whole number of [`K_ALIGN`] blocks.
pub fn padded(n: usize) -> usize {
    n.div_ceil(K_ALIGN) * K_ALIGN
}

/// Which kernel computes the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Kernel {
    /// 512-bit AVX-512 with VNNI.
    Vnni,
    /// 256-bit AVX2.
    Avx2,
    /// Plain Rust.
    Portable,
}

impl Int8Kernel {
    /// The best kernel here, unless `TRAINLAB_INT8` names a lower one.
    pub fn detect() -> Self {
        // TRAINLAB_INT8 (the older switch) wins; else TRAINLAB_SIMD's level
        // (`util::simd`), which every other hand-written kernel follows too.
        let wanted = std::env::var("TRAINLAB_INT8")
            .unwrap_or_else(|_| crate::util::simd::level().name().to_string());
        if wanted == "portable" {
            return Self::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if wanted != "avx2" && has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
                return Self::Vnni;
            }
            if has!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }

    /// Every kernel this CPU can run (for tests that compare them).
    pub fn available() -> Vec<Self> {
        // `mut` is for the x86 block below; elsewhere only Portable exists.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut all = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                all.push(Self::Avx2);
            }
            if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
                all.push(Self::Vnni);
            }
        }
        all
    }
}

/// Weights `[n][k]` packed for the kernels (see the module comment).
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// Outputs.
    pub n: usize,
    /// Padded row length (even).
    pub kp: usize,
    data: Vec<i16>,
    /// Row length in whole quads, for the VNNI layout.
    k4: usize,
    /// Panels of 32 outputs, quad-major: per quad, 32 outputs x 4 i8.
    quads: Vec<i8>,
    /// 128 * sum of each weight row (the +128 shift's share).
    shift: Vec<i32>,
}

impl Packed {
    /// Packs `w` (`n` rows of `k` int8 values, row-major).
    pub fn new(w: &[i8], n: usize, k: usize) -> Self {
        let kp = padded(k);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0i16; panels * kp * PANEL];
        for o in 0..n {
            let (p, lane) = (o / PANEL, o % PANEL);
            for (j, &v) in w[o * k..(o + 1) * k].iter().enumerate() {
                data[p * kp * PANEL + (j / 2) * 2 * PANEL + 2 * lane + j % 2] = i16::from(v);
            }
        }
        let k4 = k.div_ceil(4);
        let mut quads = vec![0i8; panels * k4 * 4 * PANEL];
        for o in 0..n {
            let (p, lane) = (o / PANEL, o % PANEL);
            for (j, &v) in w[o * k..(o + 1) * k].iter().enumerate() {
                quads[p * k4 * 4 * PANEL + (j / 4) * 4 * PANEL + 4 * lane + j % 4] = v;
            }
        }
        // Padded to whole panels (zeros), so a panel's shares load as vectors.
        let mut shift: Vec<i32> = w
            .chunks(k.max(1))
            .take(n)
            .map(|row| 128 * row.iter().map(|&v| i32::from(v)).sum::<i32>())
            .collect();
        shift.resize(panels * PANEL, 0);
        Self {
            n,
            kp,
            data,
            k4,
            quads,
            shift,
        }
    }

    fn panel(&self, p: usize) -> &[i16] {
        &self.data[p * self.kp * PANEL..(p + 1) * self.kp * PANEL]
    }
}

/// Below this many multiply-adds a product stays on the calling thread.
const PARALLEL_WORK: usize = 1 << 20;
/// Rows a thread takes at least: fewer would re-read all the weights for little work.
const MIN_ROWS_PER_THREAD: usize = 8;

/// `out[r * n + o] = x[r] . w[o]` for the rows of `x` (each `w.kp` values,
/// zero-padded); large products are spread over rayon's threads by row blocks.
pub fn gemm(kernel: Int8Kernel, x: &[i16], w: &Packed, out: &mut [i32]) {
    use rayon::prelude::*;
    let kp = w.kp.max(1);
    let rows = x.len() / kp;
    if rows == 0 || w.n == 0 {
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    let per = if rows * w.n * kp < PARALLEL_WORK || threads == 1 {
        rows
    } else {
        rows.div_ceil(threads)
            .max(MIN_ROWS_PER_THREAD)
            .next_multiple_of(TILE_ROWS)
    };
    if per >= rows {
        block(kernel, x, w, out);
        return;
    }
    out.par_chunks_mut(per * w.n)
        .zip(x.par_chunks(per * kp))
        .for_each(|(o, xs)| block(kernel, xs, w, o));
}

/// [`gemm`] on the calling thread only (the caller already runs in parallel).
pub fn gemm_serial(kernel: Int8Kernel, x: &[i16], w: &Packed, out: &mut [i32]) {
    if w.kp > 0 && w.n > 0 {
        block(kernel, x, w, out);
    }
}

/// One thread's rows, tile by tile: up to 4 rows x one panel of 32 outputs.
fn block(kernel: Int8Kernel, x: &[i16], w: &Packed, out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if kernel == Int8Kernel::Vnni {
        // SAFETY: Vnni is only chosen when the CPU reports AVX-512F/BW/VNNI.
        unsafe { block_vnni(x, w, out) };
        return;
    }
    let kp = w.kp;
    let rows = x.len() / kp;
    let mut tile = [[0i32; PANEL]; TILE_ROWS];
    for r0 in (0..rows).step_by(TILE_ROWS) {
        let nr = TILE_ROWS.min(rows - r0);
        let xs = &x[r0 * kp..(r0 + nr) * kp];
        for p in 0..w.n.div_ceil(PANEL) {
            panel_tile(kernel, xs, nr, kp, w.panel(p), &mut tile);
            let (o0, no) = (p * PANEL, PANEL.min(w.n - p * PANEL));
            for (r, t) in tile.iter().take(nr).enumerate() {
                out[(r0 + r) * w.n + o0..][..no].copy_from_slice(&t[..no]);
            }
        }
    }
}

/// `tile[r][o] = xs[r] . panel's output o`, for the `nr` rows of `xs`.
fn panel_tile(
    kernel: Int8Kernel,
    xs: &[i16],
    nr: usize,
    kp: usize,
    panel: &[i16],
    tile: &mut [[i32; PANEL]; TILE_ROWS],
) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2 is only chosen when the CPU reports AVX2 (so does a VNNI
        // machine); the panel holds kp/2 pairs x 32 outputs, every row kp values.
        Int8Kernel::Avx2 | Int8Kernel::Vnni => unsafe { tile_avx2(xs, nr, kp, panel, tile) },
        _ => tile_portable(xs, nr, kp, panel, tile),
    }
}

fn tile_portable(
    xs: &[i16],
    nr: usize,
    kp: usize,
    panel: &[i16],
    tile: &mut [[i32; PANEL]; TILE_ROWS],
) {
    for (r, acc) in tile.iter_mut().take(nr).enumerate() {
        *acc = [0; PANEL];
        let row = &xs[r * kp..(r + 1) * kp];
        for (pair, wp) in row.chunks_exact(2).zip(panel.chunks_exact(2 * PANEL)) {
            let (a, b) = (i32::from(pair[0]), i32::from(pair[1]));
            for (o, ws) in acc.iter_mut().zip(wp.chunks_exact(2)) {
                *o += a * i32::from(ws[0]) + b * i32::from(ws[1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2(
    xs: &[i16],
    nr: usize,
    kp: usize,
    panel: &[i16],
    tile: &mut [[i32; PANEL]; TILE_ROWS],
) {
    use std::arch::x86_64::*;
    let rows: [&[i16]; TILE_ROWS] = std::array::from_fn(|r| {
        let r = r.min(nr - 1);
        &xs[r * kp..(r + 1) * kp]
    });
    for half in 0..2 {
        let mut acc = [[_mm256_setzero_si256(); 2]; TILE_ROWS];
        for j in 0..kp / 2 {
            // SAFETY: pair j's panel row holds 64 values; this half reads 32.
            let (w0, w1) = unsafe {
                let base = panel.as_ptr().add(j * 2 * PANEL + half * PANEL);
                (
                    _mm256_loadu_si256(base.cast()),
                    _mm256_loadu_si256(base.add(16).cast()),
                )
            };
            for (a, row) in acc.iter_mut().zip(&rows) {
                // SAFETY: 2j + 1 < kp, the row's length.
                let xb = _mm256_set1_epi32(unsafe {
                    row.as_ptr().add(2 * j).cast::<i32>().read_unaligned()
                });
                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(xb, w0));
                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(xb, w1));
            }
        }
        for (t, a) in tile.iter_mut().zip(&acc) {
            // SAFETY: each store writes 8 i32 inside this half of the row.
            unsafe {
                let dst = t.as_mut_ptr().add(half * 16);
                _mm256_storeu_si256(dst.cast(), a[0]);
                _mm256_storeu_si256(dst.add(8).cast(), a[1]);
            }
        }
    }
}

/// The VNNI path of [`block`]: the rows shifted into u8 quads once, then
/// tiles of 4 rows x 32 outputs, the shift's share taken off at the store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn block_vnni(x: &[i16], w: &Packed, out: &mut [i32]) {
    use std::arch::x86_64::*;
    let kp = w.kp;
    let rows = x.len() / kp;
    let k4 = w.k4;
    // u8 rows of k4 quads; the padding holds the shifted zero (128), whose
    // share the shift removes along with the rest (its weights are 0 anyway).
    let mut xu = vec![128u8; rows * k4 * 4];
    for (dst, src) in xu.chunks_mut(k4 * 4).zip(x.chunks(kp)) {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = (v + 128) as u8;
        }
    }
    let xq = xu.as_ptr().cast::<i32>();
    // SAFETY (for every use): r < rows and j < k4, inside `xu`.
    let quad = |r: usize, j: usize| -> i32 { unsafe { xq.add(r * k4 + j).read_unaligned() } };
    let mut tile = [[0i32; PANEL]; TILE_ROWS];
    for r0 in (0..rows).step_by(TILE_ROWS) {
        let nr = TILE_ROWS.min(rows - r0);
        let rs: [usize; TILE_ROWS] = std::array::from_fn(|r| r0 + r.min(nr - 1));
        for p in 0..w.n.div_ceil(PANEL) {
            let panel = &w.quads[p * k4 * 4 * PANEL..(p + 1) * k4 * 4 * PANEL];
            let mut acc = [[_mm512_setzero_si512(); 2]; TILE_ROWS];
            for j in 0..k4 {
                // SAFETY: quad j's panel row holds 128 i8.
                let (w0, w1) = unsafe {
                    let base = panel.as_ptr().add(j * 4 * PANEL);
                    (
                        _mm512_loadu_si512(base.cast()),
                        _mm512_loadu_si512(base.add(64).cast()),
                    )
                };
                for (a, &r) in acc.iter_mut().zip(&rs) {
                    let xb = _mm512_set1_epi32(quad(r, j));
                    a[0] = _mm512_dpbusd_epi32(a[0], xb, w0);
                    a[1] = _mm512_dpbusd_epi32(a[1], xb, w1);
                }
            }
            for (t, a) in tile.iter_mut().zip(&acc) {
                // SAFETY: each store writes 16 i32 inside the row of 32.
                unsafe {
                    _mm512_storeu_si512(t.as_mut_ptr().cast(), a[0]);
                    _mm512_storeu_si512(t.as_mut_ptr().add(16).cast(), a[1]);
                }
            }
            let (o0, no) = (p * PANEL, PANEL.min(w.n - p * PANEL));
            for (r, t) in tile.iter().take(nr).enumerate() {
                let dst = &mut out[(r0 + r) * w.n + o0..][..no];
                for ((d, &v), &s) in dst.iter_mut().zip(&t[..no]).zip(&w.shift[o0..o0 + no]) {
                    *d = v - s;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Fused path: activations as one byte per value, products handed tile by tile
// to an epilogue (rescale, bias, ReLU, then f32 or the next layer's codes).

/// Bytes per activation row of `k` values: whole quads (VNNI reads quads, the
/// other kernels pairs; the tail is the code 0).
pub fn code_stride(k: usize) -> usize {
    k.div_ceil(4) * 4
}

impl Int8Kernel {
    /// What each activation code is XORed with when stored as a byte: VNNI
    /// multiplies u8 by i8, so it reads codes shifted by +128 (`code ^ 0x80`);
    /// the other kernels read the byte as the i8 code itself.
    pub fn code_bias(self) -> u8 {
        if self == Self::Vnni { 0x80 } else { 0 }
    }
}

/// `x * inv` rounded half away from zero and clamped to ±127 (NaN gives -127):
/// the one rounding of activations every path uses. Written so that it
/// vectorises (`f32::round` is a libm call on baseline x86-64): `max`/`min`
/// send NaN to -127, so the value is finite and within ±127.5 when converted.
#[inline(always)]
pub fn quantise(x: f32, inv: f32) -> i32 {
    // Not `clamp`: it keeps NaN, which the conversion below must not see.
    #[allow(clippy::manual_clamp)]
    let y = (x * inv).max(-127.0).min(127.0);
    // SAFETY: y is finite and |y + 0.5| <= 127.5 (see above).
    unsafe { (y + 0.5f32.copysign(y)).to_int_unchecked::<i32>() }
}

/// Receives a product tile by tile.
pub trait TileSink {
    /// `tile[r][o]` is the exact sum for row `r0 + r` and output `o0 + o`, for
    /// `r < nr` and `o < no` (the rest of the tile is scratch).
    fn tile(
        &mut self,
        r0: usize,
        nr: usize,
        o0: usize,
        no: usize,
        tile: &[[i32; PANEL]; TILE_ROWS],
    );
}

/// Where an [`Epilogue`] writes row `r`'s output `o`: at `r * row + o`.
pub enum Dest<'a> {
    /// As f32.
    F32 { dst: &'a mut [f32], row: usize },
    /// As the next layer's code ([`quantise`] with `inv`, 1 / its input
    /// scale), stored XORed with `bias` ([`Int8Kernel::code_bias`]).
    Codes {
        dst: &'a mut [u8],
        row: usize,
        inv: f32,
        bias: u8,
    },
}

/// A layer's work after its product, applied per tile while the sums are in
/// cache: `y = sum as f32 * in_scale * scale[o] + bias[o]` (the same operations
/// in the same order as the unfused path, so the same bits), then ReLU if
/// asked, then stored ([`Dest`]).
pub struct Epilogue<'a> {
    pub in_scale: f32,
    pub scales: &'a [f32],
    pub bias: &'a [f32],
    pub relu: bool,
    pub dest: Dest<'a>,
}

impl TileSink for Epilogue<'_> {
    #[inline(always)]
    fn tile(
        &mut self,
        r0: usize,
        nr: usize,
        o0: usize,
        no: usize,
        tile: &[[i32; PANEL]; TILE_ROWS],
    ) {
        let (scales, bias) = (&self.scales[o0..o0 + no], &self.bias[o0..o0 + no]);
        for (r, acc) in tile.iter().take(nr).enumerate() {
            let mut y = [0f32; PANEL];
            for (((y, &a), &s), &b) in y.iter_mut().zip(acc).zip(scales).zip(bias) {
                *y = a as f32 * self.in_scale * s + b;
            }
            if self.relu {
                for v in &mut y {
                    *v = v.max(0.0);
                }
            }
            match &mut self.dest {
                Dest::F32 { dst, row } => {
                    dst[(r0 + r) * *row + o0..][..no].copy_from_slice(&y[..no]);
                }
                Dest::Codes {
                    dst,
                    row,
                    inv,
                    bias,
                } => {
                    for (d, &v) in dst[(r0 + r) * *row + o0..][..no].iter_mut().zip(&y) {
                        *d = (quantise(v, *inv) as i8 as u8) ^ *bias;
                    }
                }
            }
        }
    }
}

/// The products of `rows` activation rows held as codes (`stride` bytes each,
/// at least [`code_stride`] of `w`'s inputs, the tail holding the code 0,
/// every byte XORed with `kernel.code_bias()`) with `w`, handed to `sink` tile
/// by tile, on the calling thread.
pub fn gemm_codes<S: TileSink>(
    kernel: Int8Kernel,
    x: &[u8],
    stride: usize,
    rows: usize,
    w: &Packed,
    sink: &mut S,
) {
    if rows == 0 || w.n == 0 {
        return;
    }
    assert!(
        stride >= w.k4 * 4 && x.len() >= rows * stride,
        "int8 rows: {rows} of stride {stride} for {} inputs in {} bytes",
        w.k4 * 4,
        x.len()
    );
    #[cfg(target_arch = "x86_64")]
    if kernel == Int8Kernel::Vnni {
        // SAFETY: Vnni is only chosen when the CPU reports AVX-512F/BW/VNNI;
        // the rows are inside `x` (asserted above).
        unsafe { codes_vnni(x, stride, rows, w, sink) };
        return;
    }
    codes_widened(kernel, x, stride, rows, w, sink);
}

/// AVX2 and portable: each tile's rows widened to i16 once, then the pair
/// kernels over every panel.
fn codes_widened<S: TileSink>(
    kernel: Int8Kernel,
    x: &[u8],
    stride: usize,
    rows: usize,
    w: &Packed,
    sink: &mut S,
) {
    let kp = w.kp;
    let mut wide = vec![0i16; TILE_ROWS * kp];
    let mut tile = [[0i32; PANEL]; TILE_ROWS];
    for r0 in (0..rows).step_by(TILE_ROWS) {
        let nr = TILE_ROWS.min(rows - r0);
        for (r, dst) in wide.chunks_mut(kp.max(1)).take(nr).enumerate() {
            let src = &x[(r0 + r) * stride..][..kp];
            for (d, &b) in dst.iter_mut().zip(src) {
                *d = i16::from(b as i8);
            }
        }
        for p in 0..w.n.div_ceil(PANEL) {
            panel_tile(kernel, &wide[..nr * kp], nr, kp, w.panel(p), &mut tile);
            sink.tile(r0, nr, p * PANEL, PANEL.min(w.n - p * PANEL), &tile);
        }
    }
}

/// The VNNI path of [`gemm_codes`]: panel by panel (a panel's weights stay
/// in cache while every row passes), tiles of 8 rows x 32 outputs straight off
/// the u8 rows (4, 2 or 1 for the last rows, so a small batch does no
/// redundant work), the shift's share taken off before the sink sees them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn codes_vnni<S: TileSink>(x: &[u8], stride: usize, rows: usize, w: &Packed, sink: &mut S) {
    let mut tile = [[0i32; PANEL]; TILE_ROWS];
    for p in 0..w.n.div_ceil(PANEL) {
        let mut r0 = 0;
        while r0 < rows {
            // SAFETY (each): rows r0.. r0 + R - 1 are below `rows`, inside `x`.
            r0 += unsafe {
                match rows - r0 {
                    8.. => vnni_tile::<8, S>(x, stride, r0, p, w, sink, &mut tile),
                    4..=7 => vnni_tile::<4, S>(x, stride, r0, p, w, sink, &mut tile),
                    2..=3 => vnni_tile::<2, S>(x, stride, r0, p, w, sink, &mut tile),
                    _ => vnni_tile::<1, S>(x, stride, r0, p, w, sink, &mut tile),
                }
            };
        }
    }
}

/// `R` rows from `r0` times panel `p`, handed to `sink` 4 rows at a time;
/// returns `R`. Caller: rows `r0..r0 + R` exist in `x` at `stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn vnni_tile<const R: usize, S: TileSink>(
    x: &[u8],
    stride: usize,
    r0: usize,
    p: usize,
    w: &Packed,
    sink: &mut S,
    tile: &mut [[i32; PANEL]; TILE_ROWS],
) -> usize {
    use std::arch::x86_64::*;
    let k4 = w.k4;
    // SAFETY: the caller vouches for rows r0..r0 + R.
    let ptrs: [*const u8; R] =
        std::array::from_fn(|r| unsafe { x.as_ptr().add((r0 + r) * stride) });
    // SAFETY: panel p holds k4 quads x 128 i8; shift holds whole panels.
    let (panel, shift) = unsafe {
        (
            w.quads.as_ptr().add(p * k4 * 4 * PANEL),
            w.shift.as_ptr().add(p * PANEL),
        )
    };
    let mut acc = [[_mm512_setzero_si512(); 2]; R];
    for j in 0..k4 {
        // SAFETY: quad j's panel row holds 128 i8; 4j + 3 < stride.
        unsafe {
            let w0 = _mm512_loadu_si512(panel.add(j * 4 * PANEL).cast());
            let w1 = _mm512_loadu_si512(panel.add(j * 4 * PANEL + 64).cast());
            for (a, &ptr) in acc.iter_mut().zip(&ptrs) {
                let xb = _mm512_set1_epi32(ptr.add(4 * j).cast::<i32>().read_unaligned());
                a[0] = _mm512_dpbusd_epi32(a[0], xb, w0);
                a[1] = _mm512_dpbusd_epi32(a[1], xb, w1);
            }
        }
    }
    let no = PANEL.min(w.n - p * PANEL);
    // SAFETY: 32 i32 of shares per panel.
    let (s0, s1) = unsafe {
        (
            _mm512_loadu_si512(shift.cast()),
            _mm512_loadu_si512(shift.add(16).cast()),
        )
    };
    for (half, accs) in acc.chunks(TILE_ROWS).enumerate() {
        for (t, a) in tile.iter_mut().zip(accs) {
            // SAFETY: each store writes 16 i32 inside the row of 32.
            unsafe {
                _mm512_storeu_si512(t.as_mut_ptr().cast(), _mm512_sub_epi32(a[0], s0));
                _mm512_storeu_si512(t.as_mut_ptr().add(16).cast(), _mm512_sub_epi32(a[1], s1));
            }
        }
        sink.tile(r0 + half * TILE_ROWS, accs.len(), p * PANEL, no, tile);
    }
    R
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(rows: usize, n: usize, k: usize, seed: u64) -> (Vec<i16>, Packed, Vec<i32>) {
        let mut rng = crate::util::rng::Rng::new(seed);
        let kp = padded(k);
        let w: Vec<i8> = (0..n * k)
            .map(|_| (rng.below(255) as i16 - 127) as i8)
            .collect();
        let mut x = vec![0i16; rows * kp];
        for r in x.chunks_mut(kp) {
            for v in &mut r[..k] {
                *v = rng.below(255) as i16 - 127;
            }
        }
        let exact = (0..rows * n)
            .map(|i| {
                let (r, o) = (i / n, i % n);
                (0..k)
                    .map(|j| i32::from(x[r * kp + j]) * i32::from(w[o * k + j]))
                    .sum()
            })
            .collect();
        (x, Packed::new(&w, n, k), exact)
    }

    #[test]
    fn every_kernel_gives_the_exact_sums_at_every_edge() {
        for (rows, n, k) in [
            (1, 1, 1),
            (3, 5, 16),
            (4, 33, 9),
            (9, 7, 784),
            (66, 70, 288),
        ] {
            let (x, w, exact) = case(rows, n, k, (rows * n * k) as u64);
            for kernel in Int8Kernel::available() {
                let mut out = vec![0; rows * n];
                gemm(kernel, &x, &w, &mut out);
                assert_eq!(out, exact, "{kernel:?}, {rows}x{n}x{k}");
            }
        }
    }

    #[test]
    fn large_products_split_over_threads_give_the_same_sums() {
        let (x, w, exact) = case(203, 37, 320, 5);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        for kernel in Int8Kernel::available() {
            let mut out = vec![0; exact.len()];
            pool.install(|| gemm(kernel, &x, &w, &mut out));
            assert_eq!(out, exact, "{kernel:?}");
        }
    }

    #[test]
    fn the_kernels_here_start_with_portable_and_detect_follows_the_simd_level() {
        use crate::util::simd::{Level, level};
        let all = Int8Kernel::available();
        assert_eq!(all.first(), Some(&Int8Kernel::Portable), "{all:?}");
        let detected = Int8Kernel::detect();
        assert!(all.contains(&detected), "{detected:?} not in {all:?}");
        // TRAINLAB_INT8 (when set) overrides the level; else: portable level,
        // Portable; AVX2 level, Avx2; AVX-512 level, Vnni where the CPU has it.
        let want = match std::env::var("TRAINLAB_INT8").ok().as_deref() {
            Some("portable") => Some(Int8Kernel::Portable),
            Some(_) => None,
            None => Some(match level() {
                Level::Portable => Int8Kernel::Portable,
                Level::Avx512 if all.contains(&Int8Kernel::Vnni) => Int8Kernel::Vnni,
                _ if all.contains(&Int8Kernel::Avx2) => Int8Kernel::Avx2,
                _ => Int8Kernel::Portable,
            }),
        };
        if let Some(want) = want {
            assert_eq!(detected, want, "level {:?}", level());
        }
    }

    #[test]
    fn code_rows_are_whole_quads_and_only_vnni_shifts_codes() {
        for (k, stride) in [
            (0, 0),
            (1, 4),
            (3, 4),
            (4, 4),
            (5, 8),
            (784, 784),
            (785, 788),
        ] {
            assert_eq!(code_stride(k), stride, "{k} inputs");
        }
        assert_eq!(Int8Kernel::Vnni.code_bias(), 0x80);
        assert_eq!(Int8Kernel::Avx2.code_bias(), 0);
        assert_eq!(Int8Kernel::Portable.code_bias(), 0);
    }

    #[test]
    fn no_inputs_or_no_outputs_leave_the_output_as_it_was() {
        for kernel in Int8Kernel::available() {
            // Zero inputs (rows of length 0) and three outputs.
            let w = Packed::new(&[], 3, 0);
            assert_eq!((w.n, w.kp), (3, 0));
            let mut out = [7i32; 6];
            gemm_serial(kernel, &[], &w, &mut out);
            gemm(kernel, &[], &w, &mut out);
            assert_eq!(out, [7; 6], "{kernel:?}");
            // Two rows of five inputs, no outputs.
            let w = Packed::new(&[], 0, 5);
            let x = [1i16; 12];
            gemm_serial(kernel, &x, &w, &mut []);
            gemm(kernel, &x, &w, &mut []);
        }
    }

    #[test]
    fn an_epilogue_rescales_adds_the_bias_and_writes_f32_or_shifted_codes() {
        // Rows 1 and 2 of a 3-row output, outputs 32..35 of 35 (the second
        // panel): y = sum * 0.5 * scale[o] + bias[o], worked by hand.
        let mut scales = vec![9.0f32; 35];
        let mut bias = vec![9.0f32; 35];
        scales[32..].copy_from_slice(&[0.25, 2.0, 1.0]);
        bias[32..].copy_from_slice(&[0.5, -1.0, 0.0]);
        let mut tile = [[0i32; PANEL]; TILE_ROWS];
        tile[0][..3].copy_from_slice(&[8, -3, 100]);
        tile[1][..3].copy_from_slice(&[-8, 5, -2]);
        // Row 1: 8 * 0.125 + 0.5 = 1.5, -3 * 1 - 1 = -4, 100 * 0.5 = 50;
        // row 2: -8 * 0.125 + 0.5 = -0.5, 5 * 1 - 1 = 4, -2 * 0.5 = -1.
        let y = [[1.5f32, -4.0, 50.0], [-0.5, 4.0, -1.0]];
        for relu in [false, true] {
            let mut dst = vec![-7.0f32; 3 * 35];
            let mut epi = Epilogue {
                in_scale: 0.5,
                scales: &scales,
                bias: &bias,
                relu,
                dest: Dest::F32 {
                    dst: &mut dst,
                    row: 35,
                },
            };
            epi.tile(1, 2, 32, 3, &tile);
            let mut want = vec![-7.0f32; 3 * 35];
            for (r, row) in y.iter().enumerate() {
                for (o, &v) in row.iter().enumerate() {
                    want[(1 + r) * 35 + 32 + o] = if relu { v.max(0.0) } else { v };
                }
            }
            assert_eq!(dst, want, "relu {relu}");
        }
        // As the next layer's codes (inv 2: codes 3, -8, 100 and -1, 8, -2),
        // rows of 36 bytes, stored as is or shifted by 128 (VNNI's u8 form:
        // code ^ 0x80 is code + 128).
        let codes = [[3i32, -8, 100], [-1, 8, -2]];
        for shift in [0u8, 0x80] {
            let mut dst = vec![0x55u8; 3 * 36];
            let mut epi = Epilogue {
                in_scale: 0.5,
                scales: &scales,
                bias: &bias,
                relu: false,
                dest: Dest::Codes {
                    dst: &mut dst,
                    row: 36,
                    inv: 2.0,
                    bias: shift,
                },
            };
            epi.tile(1, 2, 32, 3, &tile);
            let mut want = vec![0x55u8; 3 * 36];
            for (r, row) in codes.iter().enumerate() {
                for (o, &c) in row.iter().enumerate() {
                    want[(1 + r) * 36 + 32 + o] = (c + i32::from(shift)).rem_euclid(256) as u8;
                }
            }
            assert_eq!(dst, want, "shift {shift:#x}");
        }
    }

    #[test]
    fn products_of_codes_match_the_plain_sums_on_every_kernel() {
        // gemm_codes with every byte XORed with the kernel's code_bias, rows of
        // code_stride bytes (the tail the code 0), against plain i32 sums; 9
        // rows (two whole tiles and one row), 37 outputs (two panels).
        let (rows, n, k) = (9, 37, 10);
        let (x, w, exact) = case(rows, n, k, 77);
        let kp = padded(k);
        let stride = code_stride(k);
        struct Collect(Vec<i32>, usize);
        impl TileSink for Collect {
            fn tile(
                &mut self,
                r0: usize,
                nr: usize,
                o0: usize,
                no: usize,
                tile: &[[i32; PANEL]; TILE_ROWS],
            ) {
                for (r, t) in tile.iter().take(nr).enumerate() {
                    let at = (r0 + r) * self.1 + o0;
                    self.0[at..at + no].copy_from_slice(&t[..no]);
                }
            }
        }
        for kernel in Int8Kernel::available() {
            let bias = kernel.code_bias();
            let mut bytes = vec![bias; rows * stride];
            for (dst, src) in bytes.chunks_mut(stride).zip(x.chunks(kp)) {
                for (d, &v) in dst.iter_mut().zip(&src[..k]) {
                    *d = (v as i8 as u8) ^ bias;
                }
            }
            let mut sink = Collect(vec![i32::MIN; rows * n], n);
            gemm_codes(kernel, &bytes, stride, rows, &w, &mut sink);
            assert_eq!(sink.0, exact, "{kernel:?}");
        }
    }

    /// No rows, or no outputs: `gemm_codes` hands the sink nothing and reads
    /// nothing, so an empty buffer of any stride will do.
    #[test]
    fn products_of_no_rows_or_no_outputs_hand_the_sink_nothing() {
        struct Count(usize);
        impl TileSink for Count {
            fn tile(
                &mut self,
                _r0: usize,
                _nr: usize,
                _o0: usize,
                _no: usize,
                _tile: &[[i32; PANEL]; TILE_ROWS],
            ) {
                self.0 += 1;
            }
        }
        let three = Packed::new(&[1; 15], 3, 5);
        let none = Packed::new(&[], 0, 5);
        for kernel in Int8Kernel::available() {
            let mut sink = Count(0);
            gemm_codes(kernel, &[], 0, 0, &three, &mut sink);
            gemm_codes(kernel, &[], 8, 2, &none, &mut sink);
            assert_eq!(sink.0, 0, "{kernel:?}");
        }
    }

    /// `detect` in a process started with `TRAINLAB_SIMD` set (the level is
    /// decided once per process, so a child of this test binary runs the test
    /// above): `avx2` gives Avx2 even on a CPU with AVX-512 VNNI, `portable`
    /// gives Portable.
    #[test]
    fn detect_follows_a_lower_simd_level_set_for_the_process() {
        let exe = std::env::current_exe().expect("this test binary");
        let test = "quant::kernel::tests::the_kernels_here_start_with_portable_and_detect_follows_the_simd_level";
        for level in ["avx2", "portable"] {
            let out = std::process::Command::new(&exe)
                .args(["--exact", test, "--test-threads", "1"])
                .env("TRAINLAB_SIMD", level)
                .env_remove("TRAINLAB_INT8")
                .output()
                .expect("runs the test binary");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "TRAINLAB_SIMD={level}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
