//! Reading IDX files, the format of MNIST and Fashion-MNIST.
//!
//! A file is gzip-compressed when it starts with the gzip magic bytes `1f 8b`, whatever
//! its name; otherwise it is read as raw IDX. The header is checked before the body is
//! read: magic `0x00000803` (unsigned bytes, 3 dimensions: count, rows, cols) for
//! images, `0x00000801` (1 dimension: count) for labels. The body must be exactly as
//! long as the header says, labels must be class indices below [`NUM_CLASSES`], and a
//! pair of files must agree on the count. Every failure names the file.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use super::error::DataError;
use super::image_set::ImageSet;

/// Labels must be below this: both supported datasets have ten classes.
pub const NUM_CLASSES: u8 = 10;

const IMAGE_MAGIC: u32 = 0x0000_0803;
const LABEL_MAGIC: u32 = 0x0000_0801;
/// The body is read in growing steps up to this, so a lying header cannot make us
/// reserve gigabytes before the data is there.
const MAX_PREALLOC: usize = 64 << 20;
/// Bytes read from the file at a time.
const READ_BUFFER: usize = 256 << 10;

/// What a file is supposed to hold; picks the magic number and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Images => "image",
            Kind::Labels => "label",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            Kind::Images => "an image",
            Kind::Labels => "a label",
        }
    }

    fn magic(self) -> u32 {
        match self {
            Kind::Images => IMAGE_MAGIC,
            Kind::Labels => LABEL_MAGIC,
        }
    }
}

/// An open IDX file: the (possibly decompressing) byte stream and how to word errors.
struct IdxReader<'a> {
    path: &'a Path,
    kind: Kind,
    gzip: bool,
    stream: Box<dyn Read + 'a>,
}

impl<'a> IdxReader<'a> {
    fn open(path: &'a Path, kind: Kind) -> Result<Self, DataError> {
        let mut file = File::open(path).map_err(|e| DataError::io("open", path, e))?;
        let mut head = [0u8; 2];
        let got = read_up_to(&mut file, &mut head).map_err(|e| DataError::io("read", path, e))?;
        let replay = Cursor::new(head[..got].to_vec()).chain(file);
        let gzip = head[..got] == [0x1f, 0x8b];
        // Large reads: the decoder inflates one buffer of input per call.
        let input = BufReader::with_capacity(READ_BUFFER, replay);
        let stream: Box<dyn Read> = if gzip {
            Box::new(GzDecoder::new(input))
        } else {
            Box::new(input)
        };
        Ok(Self {
            path,
            kind,
            gzip,
            stream,
        })
    }

    fn corrupt(&self, problem: impl Into<String>) -> DataError {
        DataError::Corrupt {
            path: self.path.to_path_buf(),
            kind: self.kind.name(),
            problem: problem.into(),
        }
    }

    /// Maps a read failure: inside a gzip stream it means damaged data, otherwise I/O.
    fn read_error(&self, e: std::io::Error) -> DataError {
        if self.gzip {
            self.corrupt(format!("the gzip data is damaged or cut short ({e})"))
        } else {
            DataError::io("read", self.path, e)
        }
    }

    /// Reads and checks the magic number, then returns the dimension sizes.
    fn header(&mut self) -> Result<Vec<usize>, DataError> {
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut self.stream, &mut magic).map_err(|e| self.read_error(e))?;
        if got == 0 {
            return Err(self.corrupt("the file is empty"));
        }
        if got < 4 {
            return Err(self.corrupt(format!(
                "the file ends after {got} bytes, inside the header"
            )));
        }
        let found = u32::from_be_bytes(magic);
        let expected = self.kind.magic();
        if found != expected {
            let other = match self.kind {
                Kind::Images => Kind::Labels,
                Kind::Labels => Kind::Images,
            };
            let hint = if found == other.magic() {
                format!(
                    " (that is {} file: are the file names swapped?)",
                    other.with_article()
                )
            } else {
                String::new()
            };
            return Err(self.corrupt(format!(
                "magic number is 0x{found:08X}, expected 0x{expected:08X}{hint}"
            )));
        }
        let ndims = usize::from(magic[3]);
        let mut raw = vec![0u8; 4 * ndims];
        let got = read_up_to(&mut self.stream, &mut raw).map_err(|e| self.read_error(e))?;
        if got < raw.len() {
            return Err(self.corrupt(format!(
                "the header needs {ndims} dimension sizes but the file ends after {} bytes",
                4 + got
            )));
        }
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
            .collect())
    }

    /// Reads exactly `len` bytes of body and checks that nothing follows them.
    ///
    /// Up to `MAX_PREALLOC` bytes the body is decoded straight into one zeroed
    /// buffer of that size: fresh pages from the allocator, written once by the
    /// decoder (`read_to_end` into spare capacity would first zero each chunk
    /// itself, a second pass over 47 MB for Fashion-MNIST). Beyond that it grows
    /// as bytes arrive, so a lying header cannot reserve gigabytes.
    fn body(self, len: usize, promised: &str) -> Result<Vec<u8>, DataError> {
        self.body_within(len, promised, MAX_PREALLOC)
    }

    /// [`Self::body`] with `prealloc` in place of `MAX_PREALLOC` (tests use a small one).
    fn body_within(
        mut self,
        len: usize,
        promised: &str,
        prealloc: usize,
    ) -> Result<Vec<u8>, DataError> {
        let mut body = vec![0u8; len.min(prealloc)];
        let got = read_up_to(&mut self.stream, &mut body).map_err(|e| self.read_error(e))?;
        body.truncate(got);
        if got == prealloc && len > prealloc {
            let rest = u64::try_from(len - prealloc).unwrap_or(u64::MAX);
            let read = (&mut self.stream).take(rest).read_to_end(&mut body);
            read.map_err(|e| self.read_error(e))?;
        }
        if body.len() < len {
            return Err(self.corrupt(format!(
                "truncated: the header promises {promised} ({len} bytes) but only {} bytes follow",
                body.len()
            )));
        }
        let mut next = [0u8; 1];
        if read_up_to(&mut self.stream, &mut next).map_err(|e| self.read_error(e))? > 0 {
            return Err(self.corrupt(format!(
                "more data follows the {len} bytes the header promises ({promised})"
            )));
        }
        Ok(body)
    }
}

/// Reads as much of `buf` as the stream holds; returns how many bytes were filled.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads an IDX image file (`.gz` or raw). The returned set has every label 0; pair it
/// with [`read_idx_labels`] (or use `load_images`) for the real labels.
pub fn read_idx_images(path: &Path) -> Result<ImageSet, DataError> {
    let mut reader = IdxReader::open(path, Kind::Images)?;
    let dims = reader.header()?;
    let [n, rows, cols] = dims[..] else {
        return Err(reader.corrupt(format!("expected 3 dimensions, found {}", dims.len())));
    };
    if rows == 0 || cols == 0 {
        return Err(reader.corrupt(format!("images are {rows}x{cols}; both sizes must be > 0")));
    }
    let len = n
        .checked_mul(rows)
        .and_then(|x| x.checked_mul(cols))
        .ok_or_else(|| reader.corrupt(format!("{n} images of {rows}x{cols} is too large")))?;
    let images = reader.body(len, &format!("{n} images of {rows}x{cols}"))?;
    Ok(ImageSet {
        channels: 1,
        rows,
        cols,
        images,
        labels: vec![0; n],
    })
}

/// Reads an IDX label file (`.gz` or raw); every label must be below [`NUM_CLASSES`].
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut reader = IdxReader::open(path, Kind::Labels)?;
    let dims = reader.header()?;
    let [n] = dims[..] else {
        return Err(reader.corrupt(format!("expected 1 dimension, found {}", dims.len())));
    };
    let corrupt = |problem: String| DataError::Corrupt {
        path: path.to_path_buf(),
        kind: Kind::Labels.name(),
        problem,
    };
    let labels = reader.body(n, &format!("{n} labels"))?;
    if let Some((i, &v)) = labels.iter().enumerate().find(|&(_, &v)| v >= NUM_CLASSES) {
        return Err(corrupt(format!(
            "label #{i} is {v}, but class indices must be 0..={}",
            NUM_CLASSES - 1
        )));
    }
    Ok(labels)
}

/// Reads an image file and its label file and checks that the counts agree.
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<ImageSet, DataError> {
    let mut set = read_idx_images(images)?;
    let label_values = read_idx_labels(labels)?;
    if label_values.len() != set.len() {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            n_images: set.len(),
            labels: labels.to_path_buf(),
            n_labels: label_values.len(),
        });
    }
    set.labels = label_values;
    Ok(set)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    /// Raw IDX bytes for `n` images of `rows`x`cols`; pixel values are `i + k`.
    pub(crate) fn image_bytes(n: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut v = IMAGE_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            v.extend(d.to_be_bytes());
        }
        let per = (rows * cols) as usize;
        v.extend((0..n as usize * per).map(|k| (k / per + k % per) as u8));
        v
    }

    /// Raw IDX bytes for these labels.
    pub(crate) fn label_bytes(labels: &[u8]) -> Vec<u8> {
        let mut v = LABEL_MAGIC.to_be_bytes().to_vec();
        v.extend((labels.len() as u32).to_be_bytes());
        v.extend(labels);
        v
    }

    pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("compress");
        e.finish().expect("compress")
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    /// Runs `read` on a file holding `bytes` and returns the error text, which must name
    /// the file and contain `needle`.
    fn expect_error<T: std::fmt::Debug>(
        bytes: &[u8],
        read: impl Fn(&Path) -> Result<T, DataError>,
        needle: &str,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "case-file", bytes);
        let msg = match read(&p) {
            Ok(v) => panic!("expected an error containing {needle:?}, got {v:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains(&p.display().to_string()),
            "path missing in: {msg}"
        );
        assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
    }

    #[test]
    fn reads_raw_and_gzip_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = write(dir.path(), "i", &image_bytes(3, 2, 2));
        // A compressed file is recognised by its content, not its name.
        let packed = write(dir.path(), "i-no-suffix", &gz(&image_bytes(3, 2, 2)));
        for p in [&raw, &packed] {
            let s = read_idx_images(p).expect("valid file");
            assert_eq!((s.len(), s.rows, s.cols), (3, 2, 2));
            assert_eq!(s.image(2), &[2, 3, 4, 5]);
        }
        let l = write(dir.path(), "l.gz", &gz(&label_bytes(&[9, 0, 4])));
        assert_eq!(read_idx_labels(&l).expect("valid labels"), vec![9, 0, 4]);
        let set = read_idx_pair(&packed, &l).expect("valid pair");
        assert_eq!(set.labels, vec![9, 0, 4]);
    }

    #[test]
    fn zero_images_is_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "i", &image_bytes(0, 28, 28));
        let s = read_idx_images(&p).expect("valid empty set");
        assert!(s.is_empty());
        assert_eq!(s.rows, 28);
    }

    #[test]
    fn empty_file() {
        expect_error(b"", read_idx_images, "empty");
        expect_error(b"", read_idx_labels, "empty");
        expect_error(&gz(b""), read_idx_labels, "empty");
    }

    #[test]
    fn bad_magic() {
        expect_error(&label_bytes(&[1]), read_idx_images, "swapped");
        expect_error(&image_bytes(1, 1, 1), read_idx_labels, "swapped");
        let mut b = image_bytes(1, 1, 1);
        b[2] = 0x0D; // float pixels
        expect_error(&b, read_idx_images, "0x00000D03");
        expect_error(b"PK\x03\x04zipfile", read_idx_images, "magic number");
    }

    #[test]
    fn truncated() {
        let full = image_bytes(4, 3, 3);
        expect_error(&full[..full.len() - 1], read_idx_images, "truncated");
        expect_error(&full[..10], read_idx_images, "ends after 10 bytes");
        expect_error(&full[..2], read_idx_images, "inside the header");
        let packed = gz(&full);
        expect_error(&packed[..packed.len() / 2], read_idx_images, "gzip");
        let labels = label_bytes(&[1, 2, 3]);
        expect_error(&labels[..labels.len() - 2], read_idx_labels, "only 1 bytes");
    }

    #[test]
    fn trailing_data() {
        let mut b = label_bytes(&[1, 2]);
        b.push(3);
        expect_error(&b, read_idx_labels, "more data follows");
        expect_error(&gz(&b), read_idx_labels, "more data follows");
    }

    #[test]
    fn a_body_longer_than_the_preallocation_grows_and_is_checked_alike() {
        // 5 images of 3x3: 45 bytes of body, read with room for 8 up front.
        let full = image_bytes(5, 3, 3);
        let body = &full[16..];
        let read = |bytes: &[u8], prealloc: usize| {
            let dir = tempfile::tempdir().expect("tempdir");
            let p = write(dir.path(), "i", bytes);
            let mut r = IdxReader::open(&p, Kind::Images).expect("open");
            r.header().expect("header");
            r.body_within(45, "5 images of 3x3", prealloc)
                .map_err(|e| e.to_string())
        };
        for prealloc in [1, 8, 44, 45, 46, 1000] {
            for bytes in [full.clone(), gz(&full)] {
                assert_eq!(
                    read(&bytes, prealloc).as_deref(),
                    Ok(body),
                    "prealloc {prealloc}"
                );
            }
            let cut = read(&full[..full.len() - 1], prealloc).expect_err("cut short");
            assert!(
                cut.contains("only 44 bytes follow"),
                "prealloc {prealloc}: {cut}"
            );
            let mut longer = full.clone();
            longer.push(7);
            for bytes in [longer.clone(), gz(&longer)] {
                let more = read(&bytes, prealloc).expect_err("one byte too many");
                assert!(
                    more.contains("more data follows"),
                    "prealloc {prealloc}: {more}"
                );
            }
        }
    }

    #[test]
    fn zero_sized_images() {
        expect_error(&image_bytes(2, 0, 5), read_idx_images, "0x5");
    }

    #[test]
    fn label_out_of_range() {
        expect_error(
            &label_bytes(&[0, 3, 10, 2]),
            read_idx_labels,
            "label #2 is 10",
        );
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let i = write(dir.path(), "imgs", &image_bytes(3, 2, 2));
        let l = write(dir.path(), "lbls", &label_bytes(&[1, 2]));
        let msg = read_idx_pair(&i, &l).expect_err("mismatch").to_string();
        let (i, l) = (i.display().to_string(), l.display().to_string());
        for needle in [i.as_str(), l.as_str(), "3 images", "2 labels"] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let msg = read_idx_labels(Path::new("/no/such/labels.gz"))
            .expect_err("missing")
            .to_string();
        assert!(msg.contains("/no/such/labels.gz"), "{msg}");
    }
}
