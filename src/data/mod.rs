//! Where samples come from: MNIST-format image datasets (MNIST, Fashion-MNIST),
//! mazes for reinforcement learning ([`maze`]), the playground's points in the plane
//! ([`points`]) and, in [`text`], text corpora with their vocabulary.
//!
//! [`load_images`] turns an [`ImageDatasetSpec`](crate::spec::ImageDatasetSpec) into
//! train and test [`ImageSet`]s: it finds the four IDX files for the spec's source
//! (bundled sample, system package, a folder, or a verified download), reads them with
//! full checks, and applies the limits. [`split_train_val`] then holds out a seeded,
//! stratified validation set. `source: Folder` reads a folder of PNG/JPEG/BMP/GIF/
//! WebP files instead, one subfolder per class (see `folder`). Pixels stay `u8`;
//! nothing here knows about tensors.
//! Every failure is a [`DataError`] that names the files or folders involved.

mod download;
mod error;
mod folder;
mod idx;
mod image_set;
mod load;
pub mod maze;
mod normalise;
pub mod points;
pub mod sources;
mod split;
pub mod text;

pub use error::DataError;
pub use folder::folder_classes;
pub use idx::{NUM_CLASSES, read_idx_images, read_idx_labels};
pub use image_set::{ImageData, ImageSet};
pub use load::{ImageLoad, class_names, load_images, published_stats};
pub use normalise::{
    normalisation, plane_stats, standardise, standardise_plane, standardise_plane_onto,
};
pub use split::{split_train_val, val_indices};
