//! Invariants of the build, checked on the real dependency graph.

/// The API never links audio or machine-learning code: nothing of CTranslate2, ONNX
/// Runtime, symphonia or the C++ bridge is in its dependency tree (normal and build
/// dependencies, this platform), so it stays small and builds without them.
#[test]
fn the_api_never_links_ctranslate2_onnx_runtime_or_audio_decoders() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-p", "minutes-api", "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.lines().any(|line| line.starts_with("minutes-shared")), "{tree}");
    let forbidden = ["ct2rs", "ort", "ort-sys", "symphonia", "cxx", "rubato", "printpdf"];
    let found: Vec<&str> = tree
        .lines()
        .filter(|line| forbidden.contains(&line.split(' ').next().unwrap_or_default()))
        .collect();
    assert!(found.is_empty(), "the API links {found:?}");
}
