//! In-memory image datasets: 8-bit images of one size and channel count (grey or
//! RGB), each with a class label.
//!
//! Pixels stay as bytes (0 = background for IDX); scaling to floats is the trainer's
//! job. An `ImageSet` always holds `labels.len()` images, stored back to back, each
//! channels-first (`[channels, rows, cols]`, the layout Conv2d takes).

/// Labelled images of one size, stored contiguously.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSet {
    /// Channels of every image: 1 (grey) or 3 (red, green, blue planes).
    pub channels: usize,
    /// Rows (height) of every image.
    pub rows: usize,
    /// Columns (width) of every image.
    pub cols: usize,
    /// `len() * channels * rows * cols` bytes: image after image, each channel
    /// plane after plane, each plane row-major.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * rows * cols`).
    pub fn pixels_per_image(&self) -> usize {
        self.channels * self.rows * self.cols
    }

    /// The pixels of image `i`, channels-first. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.images[i * n..(i + 1) * n]
    }

    /// A new set holding the images at `indices`, in that order (repeats allowed).
    /// Panics if an index is out of range, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut images = Vec::with_capacity(indices.len() * self.pixels_per_image());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet {
            channels: self.channels,
            rows: self.rows,
            cols: self.cols,
            images,
            labels,
        }
    }

    /// Keeps only the first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.pixels_per_image());
    }
}

/// A dataset ready for training: train and test sets, class names and provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageData {
    /// Training images (split off a validation set with `split_train_val`).
    pub train: ImageSet,
    /// Held-out test images.
    pub test: ImageSet,
    /// One name per class index: "0".."9" for MNIST, "T-shirt/top", "Trouser", ...
    /// for Fashion-MNIST.
    pub classes: Vec<String>,
    /// Where the files were read from, for people (logs, run summaries, the GUI).
    pub origin: String,
    /// Per channel, the mean and standard deviation of the pixels (scaled to
    /// [0, 1]) that inputs are standardised with: the published figures of the
    /// training files for MNIST and Fashion-MNIST, measured on the training images
    /// for a folder.
    pub stats: Vec<(f32, f32)>,
    /// Files of a folder that could not be decoded and were skipped
    /// (`skip_unreadable: true`), with the reason; empty otherwise.
    pub skipped: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ImageSet {
        ImageSet {
            channels: 1,
            rows: 1,
            cols: 2,
            images: vec![0, 1, 10, 11, 20, 21],
            labels: vec![0, 1, 2],
        }
    }

    #[test]
    fn image_and_subset_follow_the_indices() {
        let s = three();
        assert_eq!(s.len(), 3);
        assert_eq!(s.image(1), &[10, 11]);
        let sub = s.subset(&[2, 0, 2]);
        assert_eq!(sub.images, vec![20, 21, 0, 1, 20, 21]);
        assert_eq!(sub.labels, vec![2, 0, 2]);
        assert!(s.subset(&[]).is_empty());
    }

    #[test]
    fn truncate_keeps_a_prefix() {
        let mut s = three();
        s.truncate(2);
        assert_eq!(s.labels, vec![0, 1]);
        assert_eq!(s.images, vec![0, 1, 10, 11]);
        s.truncate(10);
        assert_eq!(s.len(), 2);
    }
}
