//! Loads the real datasets through the public API: the bundled MNIST sample (always
//! present in the source tree) and Debian's Fashion-MNIST package. The Fashion test is
//! skipped with a note when `/usr/share/datasets/fashion-mnist` is missing, unless the
//! environment variable `CI` is set, in which case missing data fails the test.

use std::path::Path;

use trainlab::data::{ImageSet, load_images, split_train_val};
use trainlab::spec::{DataSource, ImageDataset, ImageDatasetSpec};

fn class_counts(set: &ImageSet) -> [usize; 10] {
    let mut counts = [0; 10];
    for &l in &set.labels {
        counts[usize::from(l)] += 1;
    }
    counts
}

fn pixel_range(set: &ImageSet) -> (u8, u8) {
    let min = set.images.iter().copied().min().unwrap_or(0);
    let max = set.images.iter().copied().max().unwrap_or(0);
    (min, max)
}

#[test]
fn bundled_mnist_sample() {
    let data = load_images(&ImageDatasetSpec::default(), 0).expect("bundled sample loads");
    assert_eq!((data.train.len(), data.test.len()), (9_000, 1_000));
    for set in [&data.train, &data.test] {
        assert_eq!((set.rows, set.cols), (28, 28));
        assert_eq!(set.images.len(), set.len() * 784);
        assert_eq!(pixel_range(set), (0, 255));
    }
    assert!(
        class_counts(&data.train).iter().all(|&c| c > 700),
        "{:?}",
        class_counts(&data.train)
    );
    assert_eq!(class_counts(&data.test), [100; 10]);
    assert_eq!(
        data.classes,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert!(data.origin.contains("mnist"), "{}", data.origin);

    // The file order is mixed: a small prefix already holds every digit.
    let spec = ImageDatasetSpec {
        train_limit: Some(200),
        test_limit: Some(50),
        ..ImageDatasetSpec::default()
    };
    let small = load_images(&spec, 0).expect("limited load");
    assert_eq!((small.train.len(), small.test.len()), (200, 50));
    assert!(class_counts(&small.train).iter().all(|&c| c > 0));
    assert_eq!(small.train.image(199), data.train.image(199));

    let (train, val) = split_train_val(data.train, 0.1, 42);
    assert_eq!((train.len(), val.len()), (8_100, 900));
    assert!(
        class_counts(&val).iter().all(|&c| (70..=110).contains(&c)),
        "{:?}",
        class_counts(&val)
    );
}

#[test]
fn debian_fashion_mnist() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {} is missing: install the Debian package dataset-fashion-mnist",
            dir.display()
        );
        println!(
            "skipped: {} is missing (install the Debian package dataset-fashion-mnist to run this test)",
            dir.display()
        );
        return;
    }
    let spec = ImageDatasetSpec {
        name: ImageDataset::FashionMnist,
        source: DataSource::System,
        ..ImageDatasetSpec::default()
    };
    let data = load_images(&spec, 0).expect("Debian Fashion-MNIST loads");
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    assert_eq!((data.train.rows, data.train.cols), (28, 28));
    assert_eq!(class_counts(&data.train), [6_000; 10]);
    assert_eq!(class_counts(&data.test), [1_000; 10]);
    assert_eq!(pixel_range(&data.test), (0, 255));
    assert_eq!(data.classes[0], "T-shirt/top");
    assert_eq!(data.classes[9], "Ankle boot");
    assert!(
        data.origin.contains(&dir.display().to_string()),
        "{}",
        data.origin
    );
}
