//! Links the worker against CTranslate2 4.8.4 as the PyPI `ctranslate2` wheel ships it (the
//! library faster-whisper runs on), instead of compiling CTranslate2 and oneDNN from source.
//!
//! `ct2rs` is built with its `system` feature: it compiles only its C++ bridge and links
//! `-lctranslate2`, plus `cpu_features` and (even without CUDA) CUDA's static libraries,
//! for which `.cargo/config.toml` points it at the empty archives in `worker/link/` (the
//! wheel's library has cpu_features inside and loads CUDA itself when there is a GPU). The
//! wheel's library carries a hashed name (`libctranslate2-<hash>.so.4.8.4`), so this
//! script gives the linker a `libctranslate2.so` link to it and bakes the library's folder
//! into the binaries' run path. The set-up (`scripts/lib.sh`,
//! `ensure_ctranslate2`) unpacks the wheel into that folder; nothing is downloaded here.

use std::path::{Path, PathBuf};

/// The CTranslate2 version `ct2rs` 0.10.3 bundles the headers of.
const VERSION: &str = "4.8.4";

fn main() {
    println!("cargo:rerun-if-env-changed=MINUTES_CTRANSLATE2_DIR");
    println!("cargo:rerun-if-env-changed=MINUTES_DATA_DIR");
    let dir = library_dir();
    println!("cargo:rerun-if-changed={}", dir.display());
    let Some(library) = find_library(&dir) else {
        eprintln!(
            "error: CTranslate2 {VERSION} is not installed in {}.\n\
             Run scripts/demo or scripts/test once (they unpack it from the PyPI wheel \
             ctranslate2=={VERSION}), or set MINUTES_CTRANSLATE2_DIR to a folder holding \
             libctranslate2*.so.{VERSION}.",
            dir.display()
        );
        std::process::exit(1);
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let link = out.join("libctranslate2.so");
    let _ = std::fs::remove_file(&link);
    if let Err(error) = std::os::unix::fs::symlink(&library, &link) {
        eprintln!("error: cannot link {} to {}: {error}", link.display(), library.display());
        std::process::exit(1);
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    let library_name = library.file_name().map(|n| n.to_string_lossy().into_owned());
    println!(
        "cargo:rustc-env=MINUTES_LONG_VERSION={} (commit {}; CTranslate2 {VERSION}, the PyPI \
         wheel's library {} in {}, CPU kernels chosen at run time)",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        commit(),
        library_name.unwrap_or_default(),
        dir.display()
    );
}

/// The checkout's commit (`unknown` outside a git checkout); the build runs again when
/// the branch moves.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/packed-refs");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{branch}");
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

/// `MINUTES_CTRANSLATE2_DIR`, else `ctranslate2-VERSION` in the data folder.
fn library_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("MINUTES_CTRANSLATE2_DIR") {
        return dir;
    }
    let data = var("MINUTES_DATA_DIR").unwrap_or_else(|| {
        var("XDG_DATA_HOME")
            .unwrap_or_else(|| {
                var("HOME").unwrap_or_else(|| PathBuf::from("/")).join(".local/share")
            })
            .join("minutes")
    });
    data.join(format!("ctranslate2-{VERSION}"))
}

fn find_library(dir: &Path) -> Option<PathBuf> {
    let suffix = format!(".so.{VERSION}");
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|path| {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libctranslate2") && n.ends_with(&suffix))
    })
}
