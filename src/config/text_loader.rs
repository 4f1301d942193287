//! `conf/text_loader.json`: the date and timestamp patterns the importer
//! probes when it infers column types (QuestDB's file format: two arrays,
//! `date` and `timestamp`, of `{format, locale?, utf8?}` objects).

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TimestampFormat {
    pub format: String,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub utf8: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TextLoaderFormats {
    #[serde(default)]
    pub date: Vec<TimestampFormat>,
    #[serde(default)]
    pub timestamp: Vec<TimestampFormat>,
}

/// The file we ship, compiled in so that a server started without `conf/`
/// probes the same patterns.
const BUILTIN: &str = include_str!("../../conf/text_loader.json");

impl TextLoaderFormats {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let formats: TextLoaderFormats = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if let Some(bad) = formats
            .date
            .iter()
            .chain(&formats.timestamp)
            .find(|f| f.format.is_empty())
        {
            return Err(format!("empty format pattern {bad:?}"));
        }
        Ok(formats)
    }

    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("shipped text_loader.json is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses() {
        let f = TextLoaderFormats::builtin();
        assert!(!f.timestamp.is_empty());
        assert!(!f.date.is_empty());
    }

    #[test]
    fn rejects_garbage() {
        assert!(TextLoaderFormats::parse("{not json").is_err());
    }
}
