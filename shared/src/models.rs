//! The Whisper models an installation offers (`MINUTES_MODELS`): the only names a job may
//! ask for. The API refuses any other name before anything is stored; workers resolve each
//! name to a folder the operator chose and never turn a job's text into a path.

use std::path::PathBuf;

/// One offered model: its name, and the folder the operator gave for it (else the worker
/// looks it up among the installed models).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedModel {
    /// The name a job uses ("tiny.en", "base", "large-v3").
    pub name: String,
    /// Its folder, when the operator named one (`name=/models/whisper-large-v3`).
    pub dir: Option<PathBuf>,
}

/// The operator's list, parsed from `tiny.en,base,large=/models/whisper-large-v3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelList(Vec<OfferedModel>);

impl ModelList {
    /// The offered models, in the operator's order.
    pub fn models(&self) -> &[OfferedModel] {
        &self.0
    }

    /// The model called `name`, if it is offered.
    pub fn get(&self, name: &str) -> Option<&OfferedModel> {
        self.0.iter().find(|m| m.name == name)
    }

    /// The names, comma-separated, for messages.
    pub fn names(&self) -> String {
        self.0.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Whether `name` can be a model name: letters, digits, `.`, `-` and `_`, not starting
/// with a dot, at most 64 characters (so it can never be a path).
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl std::str::FromStr for ModelList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut models: Vec<OfferedModel> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, dir) = match item.split_once('=') {
                Some((name, dir)) => (name.trim(), Some(PathBuf::from(dir.trim()))),
                None => (item, None),
            };
            if !is_model_name(name) {
                return Err(format!(
                    "{name:?} is not a model name (letters, digits, '.', '-' and '_')"
                ));
            }
            if let Some(dir) = &dir {
                if !dir.is_absolute() {
                    return Err(format!(
                        "the folder of model {name} must be absolute: {}",
                        dir.display()
                    ));
                }
            }
            if models.iter().any(|m| m.name == name) {
                return Err(format!("model {name} is listed twice"));
            }
            models.push(OfferedModel { name: name.to_string(), dir });
        }
        if models.is_empty() {
            return Err("the model list is empty".into());
        }
        Ok(Self(models))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_folders_parse_and_paths_are_not_names() {
        let list: ModelList = "tiny.en, base,large=/models/whisper-large-v3".parse().expect("list");
        assert_eq!(list.names(), "tiny.en, base, large");
        assert_eq!(
            list.get("large").and_then(|m| m.dir.clone()),
            Some("/models/whisper-large-v3".into())
        );
        assert!(list.get("/etc").is_none());
        for bad in ["/etc", "../m", "a/b", "x=relative/dir", "", ".hidden", "tiny.en,tiny.en"] {
            assert!(bad.parse::<ModelList>().is_err(), "{bad:?} was accepted");
        }
        assert!(!is_model_name("/m/../m"));
        assert!(is_model_name("large-v3_int8"));
    }
}
