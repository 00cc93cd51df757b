//! Typed parameters: what a plugin declares, and the values it receives.

use crate::Error;
use crate::bindings::tessera::plugin::types as wit;

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A whole number.
    Int(i64),
    /// A real number.
    Float(f64),
    /// On or off.
    Flag(bool),
    /// Free text.
    Text(String),
    /// One of the declared choices.
    Choice(String),
}

/// The type and range of a declared parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// A whole number in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A real number in `min..=max`.
    Float {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// On or off.
    Flag,
    /// Free text.
    Text,
    /// One of a fixed list of strings.
    Choice(Vec<String>),
}

/// A parameter the plugin declares: name, help text, type and default.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Name used on the command line and in the API (`kebab-case`).
    pub name: String,
    /// One line of help.
    pub description: String,
    /// Type and range.
    pub kind: ParamKind,
    /// Value used when the caller gives none.
    pub default: ParamValue,
}

impl ParamSpec {
    /// A whole-number parameter in `min..=max`.
    pub fn int(name: &str, description: &str, default: i64, min: i64, max: i64) -> Self {
        ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ParamKind::Int { min, max },
            default: ParamValue::Int(default),
        }
    }

    /// A real-number parameter in `min..=max`.
    pub fn float(name: &str, description: &str, default: f64, min: f64, max: f64) -> Self {
        ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ParamKind::Float { min, max },
            default: ParamValue::Float(default),
        }
    }

    /// An on/off parameter.
    pub fn flag(name: &str, description: &str, default: bool) -> Self {
        ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ParamKind::Flag,
            default: ParamValue::Flag(default),
        }
    }

    /// A free-text parameter.
    pub fn text(name: &str, description: &str, default: &str) -> Self {
        ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ParamKind::Text,
            default: ParamValue::Text(default.to_string()),
        }
    }

    /// A parameter that takes one of `choices`.
    pub fn choice(name: &str, description: &str, default: &str, choices: &[&str]) -> Self {
        ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ParamKind::Choice(choices.iter().map(|c| c.to_string()).collect()),
            default: ParamValue::Choice(default.to_string()),
        }
    }
}

impl From<ParamValue> for wit::ParamValue {
    fn from(v: ParamValue) -> Self {
        match v {
            ParamValue::Int(i) => wit::ParamValue::Int(i),
            ParamValue::Float(f) => wit::ParamValue::Float(f),
            ParamValue::Flag(b) => wit::ParamValue::Flag(b),
            ParamValue::Text(s) => wit::ParamValue::Text(s),
            ParamValue::Choice(s) => wit::ParamValue::Choice(s),
        }
    }
}

impl From<wit::ParamValue> for ParamValue {
    fn from(v: wit::ParamValue) -> Self {
        match v {
            wit::ParamValue::Int(i) => ParamValue::Int(i),
            wit::ParamValue::Float(f) => ParamValue::Float(f),
            wit::ParamValue::Flag(b) => ParamValue::Flag(b),
            wit::ParamValue::Text(s) => ParamValue::Text(s),
            wit::ParamValue::Choice(s) => ParamValue::Choice(s),
        }
    }
}

impl From<ParamSpec> for wit::ParamSpec {
    fn from(p: ParamSpec) -> Self {
        let kind = match p.kind {
            ParamKind::Int { min, max } => wit::ParamKind::Int(wit::IntRange { min, max }),
            ParamKind::Float { min, max } => wit::ParamKind::Float(wit::FloatRange { min, max }),
            ParamKind::Flag => wit::ParamKind::Flag,
            ParamKind::Text => wit::ParamKind::Text,
            ParamKind::Choice(c) => wit::ParamKind::Choice(c),
        };
        wit::ParamSpec {
            name: p.name,
            description: p.description,
            kind,
            default: p.default.into(),
        }
    }
}

/// The parameter values of one run, looked up by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    values: Vec<(String, ParamValue)>,
}

impl Params {
    pub(crate) fn from_wit(params: Vec<wit::Param>) -> Self {
        Params {
            values: params
                .into_iter()
                .map(|p| (p.name, p.value.into()))
                .collect(),
        }
    }

    /// Parameters from name/value pairs, for tests and native runs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, ParamValue)>) -> Self {
        Params {
            values: pairs.into_iter().collect(),
        }
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn require(&self, name: &str) -> Result<&ParamValue, Error> {
        self.get(name)
            .ok_or_else(|| Error::invalid_input(format!("missing parameter `{name}`")))
    }

    /// The whole-number parameter `name`.
    pub fn int(&self, name: &str) -> Result<i64, Error> {
        match self.require(name)? {
            ParamValue::Int(i) => Ok(*i),
            other => Err(wrong_type(name, "int", other)),
        }
    }

    /// The real-number parameter `name`; whole numbers are accepted too.
    pub fn float(&self, name: &str) -> Result<f64, Error> {
        match self.require(name)? {
            ParamValue::Float(f) => Ok(*f),
            ParamValue::Int(i) => Ok(*i as f64),
            other => Err(wrong_type(name, "float", other)),
        }
    }

    /// The on/off parameter `name`.
    pub fn flag(&self, name: &str) -> Result<bool, Error> {
        match self.require(name)? {
            ParamValue::Flag(b) => Ok(*b),
            other => Err(wrong_type(name, "flag", other)),
        }
    }

    /// The text or choice parameter `name`.
    pub fn text(&self, name: &str) -> Result<&str, Error> {
        match self.require(name)? {
            ParamValue::Text(s) | ParamValue::Choice(s) => Ok(s),
            other => Err(wrong_type(name, "text", other)),
        }
    }
}

fn wrong_type(name: &str, expected: &str, found: &ParamValue) -> Error {
    Error::invalid_input(format!(
        "parameter `{name}` should be {expected}, found {found:?}"
    ))
}
