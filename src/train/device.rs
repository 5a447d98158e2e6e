//! Choosing the compute device. A backend that this build lacks is an error that
//! names the cargo feature to enable, never a silent fallback to the CPU.

use candle_core::Device;

use super::DeviceError;
use crate::spec::DeviceSpec;

/// Opens the device named in the experiment.
pub fn device_for(spec: DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            if !candle_core::utils::cuda_is_available() {
                return Err(DeviceError::NotBuilt {
                    name: "Cuda",
                    backend: "CUDA",
                    feature: "cuda",
                });
            }
            Device::new_cuda(n).map_err(|source| DeviceError::Open {
                name: "Cuda",
                index: n,
                source,
            })
        }
        DeviceSpec::Metal(n) => {
            if !candle_core::utils::metal_is_available() {
                return Err(DeviceError::NotBuilt {
                    name: "Metal",
                    backend: "Metal",
                    feature: "metal",
                });
            }
            Device::new_metal(n).map_err(|source| DeviceError::Open {
                name: "Metal",
                index: n,
                source,
            })
        }
    }
}

/// The devices this build can offer (the GUI lists only these).
pub fn available_devices() -> Vec<DeviceSpec> {
    let mut out = vec![DeviceSpec::Cpu];
    if candle_core::utils::cuda_is_available() {
        out.push(DeviceSpec::Cuda(0));
    }
    if candle_core::utils::metal_is_available() {
        out.push(DeviceSpec::Metal(0));
    }
    out
}

/// Short name for tables: "cpu", "cuda:0", "metal:0".
pub(crate) fn describe(spec: DeviceSpec) -> String {
    match spec {
        DeviceSpec::Cpu => "cpu".into(),
        DeviceSpec::Cuda(n) => format!("cuda:{n}"),
        DeviceSpec::Metal(n) => format!("metal:{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_works() {
        assert!(device_for(DeviceSpec::Cpu).is_ok());
        assert_eq!(available_devices()[0], DeviceSpec::Cpu);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn missing_cuda_names_the_feature() {
        let err = device_for(DeviceSpec::Cuda(0))
            .expect_err("no cuda in this build")
            .to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
