//! Holding out a validation set from the training images.
//!
//! The split is stratified: each class gives the same fraction of its images (up to
//! rounding), so a small validation set still has every class. The validation size is
//! `round(len * fraction)`; what rounding leaves over goes to the classes with the
//! largest remainders (ties: lower class first). Which images go where comes from
//! `Rng::derive(seed, "val-split")`, so a seed always gives the same split. Both
//! halves keep the original order of the images.

use crate::util::rng::Rng;

use super::image_set::ImageSet;

/// Splits `train` into (train, validation) with `val_fraction` of the images (clamped
/// to `[0, 1]`) in validation. A fraction of 0 (or one that rounds to no image) returns
/// the set unchanged and an empty validation set.
pub fn split_train_val(train: ImageSet, val_fraction: f64, seed: u64) -> (ImageSet, ImageSet) {
    let val = val_indices(&train.labels, val_fraction, seed);
    if val.is_empty() {
        let empty = ImageSet {
            channels: train.channels,
            rows: train.rows,
            cols: train.cols,
            images: Vec::new(),
            labels: Vec::new(),
        };
        return (train, empty);
    }
    let held_out = train.subset(&val);
    // The training images that stay are moved up inside their own buffer (in
    // order), not copied into a new one: for Fashion-MNIST that is 42 MB of fresh
    // pages less to fault in before the first step.
    let mut train = train;
    let per = train.pixels_per_image();
    let mut kept = 0;
    let mut next_val = val.iter().peekable();
    for i in 0..train.len() {
        if next_val.next_if_eq(&&i).is_some() {
            continue;
        }
        if kept != i {
            train.images.copy_within(i * per..(i + 1) * per, kept * per);
            train.labels[kept] = train.labels[i];
        }
        kept += 1;
    }
    train.truncate(kept);
    (train, held_out)
}

/// Which images of a training set with `labels` go to validation (ascending):
/// the same stratified, seeded choice `split_train_val` makes.
pub fn val_indices(labels: &[u8], val_fraction: f64, seed: u64) -> Vec<usize> {
    stratified_indices(labels, val_fraction, seed, "val-split")
}

/// The stratified, seeded choice of `fraction` of the images with `labels`
/// (ascending indices), drawing from the random stream `stream` of `seed` (so the
/// test split of a folder and the validation split never use the same draws).
pub(crate) fn stratified_indices(
    labels: &[u8],
    val_fraction: f64,
    seed: u64,
    stream: &str,
) -> Vec<usize> {
    let fraction = if val_fraction.is_nan() {
        0.0
    } else {
        val_fraction.clamp(0.0, 1.0)
    };
    let n_val = (labels.len() as f64 * fraction).round() as usize;
    if n_val == 0 {
        return Vec::new();
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &label) in labels.iter().enumerate() {
        by_class[usize::from(label)].push(i);
    }
    let quotas = class_quotas(&by_class, fraction, n_val);
    let mut rng = Rng::derive(seed, stream);
    let mut in_val = vec![false; labels.len()];
    for (members, quota) in by_class.iter_mut().zip(quotas) {
        rng.shuffle(members);
        for &i in &members[..quota] {
            in_val[i] = true;
        }
    }
    (0..labels.len()).filter(|&i| in_val[i]).collect()
}

/// How many images each class gives to validation: `floor(count * fraction)`, plus one
/// for the classes with the largest remainders until the total is `n_val`.
fn class_quotas(by_class: &[Vec<usize>], fraction: f64, n_val: usize) -> Vec<usize> {
    let exact: Vec<f64> = by_class.iter().map(|m| m.len() as f64 * fraction).collect();
    let mut quotas: Vec<usize> = by_class
        .iter()
        .zip(&exact)
        .map(|(m, &e)| (e.floor() as usize).min(m.len()))
        .collect();
    let mut order: Vec<usize> = (0..by_class.len()).collect();
    // Stable sort: equal remainders keep class order.
    order.sort_by(|&a, &b| {
        let ra = exact[a] - quotas[a] as f64;
        let rb = exact[b] - quotas[b] as f64;
        rb.total_cmp(&ra)
    });
    let mut left = n_val.saturating_sub(quotas.iter().sum());
    for c in order.into_iter().cycle().take(by_class.len() * 2) {
        if left == 0 {
            break;
        }
        if quotas[c] < by_class[c].len() {
            quotas[c] += 1;
            left -= 1;
        }
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_class[c]` images of class `c`, 1x1, pixel = index so images are unique.
    fn set(per_class: &[usize]) -> ImageSet {
        let mut labels = Vec::new();
        // Interleave classes so order preservation is visible.
        let max = per_class.iter().copied().max().unwrap_or(0);
        for k in 0..max {
            for (c, &n) in per_class.iter().enumerate() {
                if k < n {
                    labels.push(c as u8);
                }
            }
        }
        let n = labels.len();
        ImageSet {
            channels: 1,
            rows: 1,
            cols: 2,
            images: (0..n)
                .flat_map(|i| [(i % 256) as u8, (i / 256) as u8])
                .collect(),
            labels,
        }
    }

    fn ids(s: &ImageSet) -> Vec<usize> {
        (0..s.len())
            .map(|i| usize::from(s.image(i)[0]) + 256 * usize::from(s.image(i)[1]))
            .collect()
    }

    fn count(s: &ImageSet, class: u8) -> usize {
        s.labels.iter().filter(|&&l| l == class).count()
    }

    #[test]
    fn sizes_disjoint_and_order_kept() {
        let all = set(&[100; 10]);
        let (train, val) = split_train_val(all.clone(), 0.1, 7);
        assert_eq!((train.len(), val.len()), (900, 100));
        let (t, v) = (ids(&train), ids(&val));
        assert!(t.windows(2).all(|w| w[0] < w[1]), "train keeps order");
        assert!(v.windows(2).all(|w| w[0] < w[1]), "val keeps order");
        let mut both: Vec<usize> = t.iter().chain(&v).copied().collect();
        both.sort_unstable();
        assert_eq!(both, (0..1000).collect::<Vec<_>>(), "disjoint and complete");
        for (&label, &id) in val.labels.iter().zip(&v) {
            assert_eq!(label, all.labels[id], "labels travel with images");
        }
        for (&label, &id) in train.labels.iter().zip(&t) {
            assert_eq!(label, all.labels[id], "labels stay with the kept images");
        }
        assert_eq!(train.images.len(), 900 * all.pixels_per_image());
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let all = set(&[50; 10]);
        let a = split_train_val(all.clone(), 0.2, 1);
        let b = split_train_val(all.clone(), 0.2, 1);
        let c = split_train_val(all, 0.2, 2);
        assert_eq!(a, b);
        assert_ne!(ids(&a.1), ids(&c.1));
    }

    #[test]
    fn stratified_per_class() {
        let all = set(&[200, 100, 50, 10, 0, 30, 30, 30, 30, 20]);
        let (train, val) = split_train_val(all.clone(), 0.1, 3);
        assert_eq!(val.len(), 50);
        for (c, expected) in [(0u8, 20), (1, 10), (2, 5), (3, 1), (4, 0), (9, 2)] {
            assert_eq!(count(&val, c), expected, "class {c}");
            assert_eq!(count(&train, c) + expected, count(&all, c), "class {c}");
        }
    }

    #[test]
    fn rounding_leftovers_reach_the_exact_total() {
        // 7 classes of 3: 10% gives 0.3 each, total round(2.1) = 2.
        let (train, val) = split_train_val(set(&[3; 7]), 0.1, 9);
        assert_eq!((train.len(), val.len()), (19, 2));
        // Quotas go to the first classes on equal remainders.
        assert_eq!(count(&val, 0) + count(&val, 1), 2);
    }

    #[test]
    fn zero_fraction_gives_empty_val() {
        let all = set(&[5; 10]);
        let (train, val) = split_train_val(all.clone(), 0.0, 1);
        assert_eq!(train, all);
        assert!(val.is_empty());
        assert_eq!((val.rows, val.cols), (1, 2));
        let (train, val) = split_train_val(all.clone(), f64::NAN, 1);
        assert_eq!((train.len(), val.len()), (50, 0));
    }

    #[test]
    fn full_fraction_moves_everything() {
        let (train, val) = split_train_val(set(&[4; 3]), 1.0, 1);
        assert_eq!((train.len(), val.len()), (0, 12));
    }
}
