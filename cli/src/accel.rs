//! Choosing QEMU's accelerator: KVM only when it is real hardware virtualization, else TCG.

use std::fmt;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;

use crate::args::AccelRequest;

/// The accelerator QEMU runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Kvm,
    Tcg,
}

impl Accelerator {
    /// The value of QEMU's `-accel`.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }
}

/// What opening /dev/kvm read-write gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmDevice {
    Missing,
    /// It exists but could not be opened; the text is the OS error.
    Unopenable(String),
    Openable,
}

/// Opens `path` (normally /dev/kvm) read-write, as QEMU would, and closes it again.
pub fn probe_kvm(path: &Path) -> KvmDevice {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => KvmDevice::Openable,
        Err(error) if error.kind() == ErrorKind::NotFound => KvmDevice::Missing,
        Err(error) => KvmDevice::Unopenable(error.to_string()),
    }
}

/// Whether a /proc/cpuinfo text lists the vmx (Intel VT-x) or svm (AMD-V) flag.
///
/// Under a paravirtualized KVM (such as PVM) /dev/kvm exists but these flags do not, and such
/// a KVM is far slower than TCG for Pith.
pub fn cpu_has_hardware_virtualization(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim() == "flags")
        .any(|(_, flags)| {
            flags
                .split_whitespace()
                .any(|flag| flag == "vmx" || flag == "svm")
        })
}

/// The accelerator picked, and why, for the one line `pith` prints about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceleratorChoice {
    pub accelerator: Accelerator,
    pub reason: Option<String>,
}

impl fmt::Display for AcceleratorChoice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.accelerator.qemu_name())?;
        match &self.reason {
            Some(reason) => write!(formatter, " ({reason})"),
            None => Ok(()),
        }
    }
}

/// Why the requested accelerator cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccelError {
    /// --accel kvm without /dev/kvm.
    #[error("--accel kvm: /dev/kvm does not exist: load the KVM module (modprobe kvm_intel or kvm_amd) or use --accel tcg")]
    KvmMissing,
    /// --accel kvm with a /dev/kvm that does not open.
    #[error("--accel kvm: /dev/kvm cannot be opened read-write ({0}): add yourself to its group (ls -l /dev/kvm) or use --accel tcg")]
    KvmUnopenable(String),
    /// --icount with --accel kvm.
    #[error(
        "--icount works only with TCG: drop --accel kvm (--accel auto picks tcg under --icount)"
    )]
    IcountNeedsTcg,
}

/// Picks the accelerator from the request, what opening /dev/kvm gave, and the text of
/// /proc/cpuinfo (`None` when it could not be read). `icount` asks for `-icount`, which only TCG has.
pub fn choose_accelerator(
    request: AccelRequest,
    icount: bool,
    kvm: &KvmDevice,
    cpuinfo: Option<&str>,
) -> Result<AcceleratorChoice, AccelError> {
    let tcg = |reason: &str| AcceleratorChoice {
        accelerator: Accelerator::Tcg,
        reason: Some(reason.to_owned()),
    };
    let hardware = cpuinfo.map(cpu_has_hardware_virtualization);
    match request {
        AccelRequest::Tcg => Ok(tcg("--accel tcg")),
        AccelRequest::Kvm if icount => Err(AccelError::IcountNeedsTcg),
        AccelRequest::Kvm => match kvm {
            KvmDevice::Missing => Err(AccelError::KvmMissing),
            KvmDevice::Unopenable(reason) => Err(AccelError::KvmUnopenable(reason.clone())),
            KvmDevice::Openable => Ok(AcceleratorChoice {
                accelerator: Accelerator::Kvm,
                reason: match hardware {
                    Some(true) => None,
                    Some(false) => Some(
                        "--accel kvm; the CPU has no vmx/svm flag, so this KVM is paravirtualized and may be far slower than tcg"
                            .to_owned(),
                    ),
                    None => Some("--accel kvm".to_owned()),
                },
            }),
        },
        AccelRequest::Auto if icount => Ok(tcg("--icount needs TCG")),
        AccelRequest::Auto => match (kvm, hardware) {
            (KvmDevice::Missing, _) => Ok(tcg("/dev/kvm does not exist")),
            (KvmDevice::Unopenable(reason), _) => Ok(tcg(&format!(
                "/dev/kvm cannot be opened read-write: {reason}"
            ))),
            (KvmDevice::Openable, Some(true)) => Ok(AcceleratorChoice {
                accelerator: Accelerator::Kvm,
                reason: None,
            }),
            (KvmDevice::Openable, Some(false)) => Ok(tcg(
                "/dev/kvm is present but the CPU has no vmx/svm flag: it is not hardware virtualization",
            )),
            (KvmDevice::Openable, None) => Ok(tcg(
                "/dev/kvm is present but /proc/cpuinfo could not be read to look for the vmx/svm flag",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTEL_VMX: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx ssse3 sse4_1\nbugs\t\t: spectre_v1\n";
    const AMD_SVM: &str = "processor\t: 0\nflags\t\t: fpu svm lm\n";
    // A PVM guest: no vmx/svm, though "vmx" appears inside other words and in another field.
    const PVM: &str =
        "processor\t: 0\nflags\t\t: fpu vme tsc hypervisor vmxon_fake svmish\nvmx flags\t: vnmi\n";

    #[test]
    fn hardware_virtualization_flag_is_a_whole_word_of_the_flags_line() {
        assert!(cpu_has_hardware_virtualization(INTEL_VMX));
        assert!(cpu_has_hardware_virtualization(AMD_SVM));
        assert!(!cpu_has_hardware_virtualization(PVM));
        assert!(!cpu_has_hardware_virtualization(""));
    }

    #[test]
    fn auto_picks_kvm_only_for_openable_hardware_kvm() {
        let kvm = choose_accelerator(
            AccelRequest::Auto,
            false,
            &KvmDevice::Openable,
            Some(INTEL_VMX),
        );
        assert_eq!(
            kvm,
            Ok(AcceleratorChoice {
                accelerator: Accelerator::Kvm,
                reason: None
            })
        );
        assert_eq!(kvm.map(|choice| choice.to_string()), Ok("kvm".to_owned()));

        let pvm = choose_accelerator(AccelRequest::Auto, false, &KvmDevice::Openable, Some(PVM))
            .expect("auto never fails");
        assert_eq!(
            pvm.to_string(),
            "tcg (/dev/kvm is present but the CPU has no vmx/svm flag: it is not hardware virtualization)"
        );

        for (device, cpuinfo) in [
            (KvmDevice::Missing, Some(INTEL_VMX)),
            (
                KvmDevice::Unopenable("Permission denied (os error 13)".into()),
                Some(AMD_SVM),
            ),
            (KvmDevice::Openable, None),
        ] {
            let choice = choose_accelerator(AccelRequest::Auto, false, &device, cpuinfo)
                .expect("auto never fails");
            assert_eq!(choice.accelerator, Accelerator::Tcg, "{device:?}");
        }
        let denied = choose_accelerator(
            AccelRequest::Auto,
            false,
            &KvmDevice::Unopenable("Permission denied (os error 13)".into()),
            Some(INTEL_VMX),
        );
        assert_eq!(
            denied.map(|choice| choice.to_string()),
            Ok(
                "tcg (/dev/kvm cannot be opened read-write: Permission denied (os error 13))"
                    .to_owned()
            )
        );
    }

    #[test]
    fn auto_with_icount_is_tcg() {
        let choice = choose_accelerator(
            AccelRequest::Auto,
            true,
            &KvmDevice::Openable,
            Some(INTEL_VMX),
        );
        assert_eq!(
            choice.map(|choice| choice.accelerator),
            Ok(Accelerator::Tcg)
        );
    }

    #[test]
    fn forced_kvm_needs_an_openable_device_and_no_icount() {
        assert_eq!(
            choose_accelerator(
                AccelRequest::Kvm,
                false,
                &KvmDevice::Missing,
                Some(INTEL_VMX)
            ),
            Err(AccelError::KvmMissing)
        );
        assert_eq!(
            choose_accelerator(
                AccelRequest::Kvm,
                false,
                &KvmDevice::Unopenable("denied".into()),
                Some(INTEL_VMX)
            ),
            Err(AccelError::KvmUnopenable("denied".into()))
        );
        assert_eq!(
            choose_accelerator(
                AccelRequest::Kvm,
                true,
                &KvmDevice::Openable,
                Some(INTEL_VMX)
            ),
            Err(AccelError::IcountNeedsTcg)
        );
        // Forced KVM is honoured even when it is paravirtualized, with a warning in the reason.
        let pvm = choose_accelerator(AccelRequest::Kvm, false, &KvmDevice::Openable, Some(PVM))
            .expect("openable");
        assert_eq!(pvm.accelerator, Accelerator::Kvm);
        assert!(pvm.to_string().contains("no vmx/svm flag"), "{pvm}");
    }

    #[test]
    fn forced_tcg_is_tcg_whatever_the_machine() {
        let choice = choose_accelerator(
            AccelRequest::Tcg,
            false,
            &KvmDevice::Openable,
            Some(INTEL_VMX),
        );
        assert_eq!(
            choice.map(|choice| choice.to_string()),
            Ok("tcg (--accel tcg)".to_owned())
        );
    }

    #[test]
    fn probing_a_missing_device() {
        assert_eq!(probe_kvm(Path::new("/nonexistent/kvm")), KvmDevice::Missing);
    }
}
