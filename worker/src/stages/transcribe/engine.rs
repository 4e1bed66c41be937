//! What CTranslate2's CPU backend can be asked for on this machine.
//!
//! On Intel CPUs CTranslate2 does its matrix products with Intel MKL (its default there;
//! elsewhere oneDNN). MKL 2023 as the PyPI wheel ships it divides by zero (SIGFPE, the
//! whole process dies) when two model replicas run side by side, seen on a Sapphire Rapids
//! VM with one and with two threads per replica; one replica with several threads is safe,
//! and on that CPU one MKL replica with two threads (3.0 s on the real call) beats two
//! oneDNN replicas with one (4.5 s). So where MKL is in use the lanes are one.

/// How many model replicas may decode side by side here.
pub fn max_lanes() -> usize {
    match uses_mkl() {
        true => 1,
        false => usize::MAX,
    }
}

/// Whether CTranslate2 will use MKL: `CT2_USE_MKL` when it is set, else whether the CPU is
/// Intel's (CTranslate2's own rule).
pub fn uses_mkl() -> bool {
    match std::env::var("CT2_USE_MKL").ok().as_deref().map(str::trim) {
        Some("0") | Some("false") | Some("OFF") | Some("off") => false,
        Some("1") | Some("true") | Some("ON") | Some("on") => true,
        _ => cpu_vendor().as_deref() == Some("GenuineIntel"),
    }
}

fn cpu_vendor() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("vendor_id"))
        .and_then(|rest| rest.split(':').nth(1))
        .map(|vendor| vendor.trim().to_string())
}
