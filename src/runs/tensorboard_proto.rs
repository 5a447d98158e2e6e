//! TensorBoard's event file format: the part of its protobuf messages trainlab
//! writes (Event, Summary with scalars, histograms and text tensors, the HParams plugin's
//! data) and the TFRecord framing around each event.
//!
//! Contract: field tags are those of TensorBoard's own .proto files
//! (tensorboard/compat/proto/event.proto, summary.proto, tensor.proto and
//! plugins/hparams/plugin_data.proto, api.proto), so TensorBoard reads what prost
//! encodes. A record is `length (u64 LE) | masked crc32c of length (u32 LE) |
//! data | masked crc32c of data (u32 LE)`.

use std::collections::BTreeMap;

/// One entry of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Training step (x axis).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "EventWhat", tags = "3, 5")]
    pub what: Option<EventWhat>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventWhat {
    /// The file's first event: `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Values at this step.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// Values recorded at one step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// One per tag.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `Summary.Value`: one tagged value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// Name of the series, e.g. `train/loss`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin shows it (text, hparams); absent for plain scalars.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value.
    #[prost(oneof = "SummaryKind", tags = "2, 5, 8")]
    pub value: Option<SummaryKind>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SummaryKind {
    /// A scalar.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// A histogram (`Summary.Value.histo`).
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
    /// A tensor (text: a string tensor).
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// TensorFlow's `HistogramProto` (summary.proto). Bucket `i` holds the values
/// in `(bucket_limit[i-1], bucket_limit[i]]`; TensorBoard draws the first from
/// `min` and the last up to `max`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// How many values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Their sum.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// The sum of their squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Right edges of the buckets, ascending.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Values per bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// Which plugin a value belongs to.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin and its data.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `text`, `hparams`, ...
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// Plugin-specific bytes (for hparams: an encoded [`HParamsPluginData`]).
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// TensorFlow's `DataType.DT_STRING`.
pub const DT_STRING: i32 = 7;
/// TensorFlow's `DataType.DT_FLOAT`.
pub const DT_FLOAT: i32 = 1;

/// TensorFlow's tensor message (only what strings and scalars need).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Element type.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// Shape (empty: a scalar).
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// Float elements.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// String elements.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// TensorFlow's shape message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Axes.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorDim>,
}

/// One axis.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorDim {
    /// Its size.
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// The HParams plugin's summary content.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// Schema version (0).
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// Which record this is.
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    pub data: Option<HParamsData>,
}

/// `HParamsPluginData.data`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamsData {
    /// The study: its hyperparameters and metrics (in the top-level run).
    #[prost(message, tag = "2")]
    Experiment(HpExperiment),
    /// One trial's values (in the trial's run).
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    /// How the trial ended.
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

/// `tensorboard.hparams.Experiment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HpExperiment {
    /// Study name.
    #[prost(string, tag = "6")]
    pub name: String,
    /// Description.
    #[prost(string, tag = "1")]
    pub description: String,
    /// When the study was exported.
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    /// The explored settings.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// The objectives.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// `tensorboard.hparams.DataType`: numbers.
pub const HP_FLOAT64: i32 = 3;
/// `tensorboard.hparams.DataType`: text.
pub const HP_STRING: i32 = 1;
/// `tensorboard.hparams.Status`: finished.
pub const STATUS_SUCCESS: i32 = 1;
/// `tensorboard.hparams.Status`: failed.
pub const STATUS_FAILURE: i32 = 2;
/// `tensorboard.hparams.Status`: not finished.
pub const STATUS_RUNNING: i32 = 3;

/// One hyperparameter.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    /// Its name (the `--set` path).
    #[prost(string, tag = "1")]
    pub name: String,
    /// [`HP_FLOAT64`] or [`HP_STRING`].
    #[prost(int32, tag = "4")]
    pub r#type: i32,
}

/// One metric shown in the table.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    /// The scalar series it reads.
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    /// Column title.
    #[prost(string, tag = "3")]
    pub display_name: String,
}

/// A scalar series: `tag` in the run `<session><group>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    /// Run suffix (empty: the session's own run).
    #[prost(string, tag = "1")]
    pub group: String,
    /// Scalar tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// A trial's settings.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// Setting name -> value.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, ProtoValue>,
    /// Trial group (its own name).
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// Seconds since the epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// How a trial ended.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// [`STATUS_SUCCESS`], [`STATUS_FAILURE`] or [`STATUS_RUNNING`].
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// Seconds since the epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value`, numbers and strings only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    /// The value.
    #[prost(oneof = "ProtoKind", tags = "2, 3")]
    pub kind: Option<ProtoKind>,
}

/// `google.protobuf.Value.kind`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ProtoKind {
    /// A number.
    #[prost(double, tag = "2")]
    NumberValue(f64),
    /// Text.
    #[prost(string, tag = "3")]
    StringValue(String),
}

/// CRC-32C (Castagnoli), the checksum TFRecord uses.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC: rotated and offset so a CRC of CRCs stays useful.
pub fn masked_crc(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// `data` framed as one TFRecord.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_values() {
        // The check value of CRC-32C, and RFC 3720's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn a_record_frames_length_data_and_checksums() {
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[8..12], &masked_crc(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(&r[15..], &masked_crc(b"abc").to_le_bytes());
        // The values TensorBoard's own masked_crc32c gives.
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
        assert_eq!(masked_crc(b""), 0xA282_EAD8);
    }
}
