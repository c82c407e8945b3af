//! Problems found in a configuration: every one of them, each with the key it concerns and
//! where the value came from (file and line, or environment variable).

use std::fmt;

/// Where a value (and so a problem) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration text: its file name and 1-based line when known.
    File {
        /// File name, when the text was read from a file.
        file: Option<String>,
        /// 1-based line, when known.
        line: Option<usize>,
    },
    /// An environment variable (`TOLLGATE_HTTP__LISTEN`).
    Env {
        /// Variable name.
        variable: String,
    },
    /// Neither: a value built in code (see [`NodeConfig::from_raw`](crate::NodeConfig::from_raw)).
    Unknown,
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the offending value came from.
    pub origin: Origin,
    /// Key path, e.g. `storage.group_commit.batch_len_max`; empty for a problem with the whole
    /// text (a syntax error).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File {
                file: Some(file),
                line: Some(line),
            } => write!(f, "{file}:{line}: ")?,
            Origin::File {
                file: Some(file),
                line: None,
            } => write!(f, "{file}: ")?,
            Origin::File {
                file: None,
                line: Some(line),
            } => write!(f, "line {line}: ")?,
            Origin::File {
                file: None,
                line: None,
            }
            | Origin::Unknown => {}
            Origin::Env { variable } => write!(f, "env {variable}: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a configuration (never empty when returned as an error). `Display`
/// writes one problem per line: `[file:line: | env VARIABLE: ]key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblems(pub Vec<Problem>);

impl ConfigProblems {
    /// The problems, in file order, then environment variables, then the rest.
    pub fn problems(&self) -> &[Problem] {
        &self.0
    }

    /// The problem about `key`, if any (handy in tests and tools).
    pub fn find(&self, key: &str) -> Option<&Problem> {
        self.0.iter().find(|p| p.key == key)
    }

    pub(crate) fn sort(&mut self) {
        self.0
            .sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.key.cmp(&b.key)));
        fn rank(p: &Problem) -> (u8, usize) {
            match &p.origin {
                Origin::File { line, .. } => (0, line.unwrap_or(usize::MAX)),
                Origin::Env { .. } => (1, 0),
                Origin::Unknown => (2, 0),
            }
        }
    }
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, problem) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}
