//! Turns `name=value` strings into typed, range-checked parameters, defaults filled in.

use super::manifest::{ParamDecl, ParamType, type_name};
use crate::runtime::{Param, ParamValue};

/// Resolves the given `name=value` pairs against the declared parameters.
///
/// Every declared parameter is in the result, in declaration order; an unknown name, a value
/// of the wrong type or one outside its range is an error naming the parameter.
pub fn resolve(decls: &[ParamDecl], given: &[(String, String)]) -> Result<Vec<Param>, String> {
    for (name, _) in given {
        if !decls.iter().any(|d| &d.name == name) {
            let known: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
            return Err(if known.is_empty() {
                format!("unknown parameter `{name}`: this plugin takes none")
            } else {
                format!("unknown parameter `{name}`; known: {}", known.join(", "))
            });
        }
    }
    decls
        .iter()
        .map(|decl| {
            let raw = given.iter().rev().find(|(n, _)| n == &decl.name);
            let value = match raw {
                Some((_, text)) => parse(decl, text)?,
                None => default_value(decl),
            };
            Ok(Param {
                name: decl.name.clone(),
                value,
            })
        })
        .collect()
}

/// Splits `k=v`.
pub fn split_assignment(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("parameter `{s}` should look like name=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// The declared default as a value.
pub fn default_value(decl: &ParamDecl) -> ParamValue {
    let d = &decl.default;
    match decl.kind {
        ParamType::Int => ParamValue::Int(d.as_integer().unwrap_or_default()),
        ParamType::Float => ParamValue::Float(
            d.as_float()
                .or(d.as_integer().map(|i| i as f64))
                .unwrap_or_default(),
        ),
        ParamType::Flag => ParamValue::Flag(d.as_bool().unwrap_or_default()),
        ParamType::Text => ParamValue::Text(d.as_str().unwrap_or_default().to_string()),
        ParamType::Choice => ParamValue::Choice(d.as_str().unwrap_or_default().to_string()),
    }
}

fn parse(decl: &ParamDecl, text: &str) -> Result<ParamValue, String> {
    let name = &decl.name;
    let wrong = || {
        format!(
            "parameter `{name}` should be {}, found `{text}`",
            type_name(decl.kind)
        )
    };
    let in_range = |v: f64| -> Result<(), String> {
        let (min, max) = (decl.min.unwrap_or(f64::MIN), decl.max.unwrap_or(f64::MAX));
        if v.is_finite() && (min..=max).contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "parameter `{name}` is {text}, expected {min} to {max}"
            ))
        }
    };
    match decl.kind {
        ParamType::Int => {
            let v: i64 = text.parse().map_err(|_| wrong())?;
            in_range(v as f64)?;
            Ok(ParamValue::Int(v))
        }
        ParamType::Float => {
            let v: f64 = text.parse().map_err(|_| wrong())?;
            in_range(v)?;
            Ok(ParamValue::Float(v))
        }
        ParamType::Flag => match text {
            "true" | "yes" | "on" | "1" => Ok(ParamValue::Flag(true)),
            "false" | "no" | "off" | "0" => Ok(ParamValue::Flag(false)),
            _ => Err(wrong()),
        },
        ParamType::Text => Ok(ParamValue::Text(text.to_string())),
        ParamType::Choice => {
            if decl.choices.iter().any(|c| c == text) {
                Ok(ParamValue::Choice(text.to_string()))
            } else {
                Err(format!(
                    "parameter `{name}` is `{text}`, expected one of {}",
                    decl.choices.join(", ")
                ))
            }
        }
    }
}

/// A parameter value as people write it (`1.5`, `true`, `centre`).
pub fn value_text(value: &ParamValue) -> String {
    match value {
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::Flag(b) => b.to_string(),
        ParamValue::Text(s) | ParamValue::Choice(s) => s.clone(),
    }
}

/// A parameter value as JSON, for provenance records.
pub fn to_json(value: &ParamValue) -> serde_json::Value {
    match value {
        ParamValue::Int(i) => (*i).into(),
        ParamValue::Float(f) => (*f).into(),
        ParamValue::Flag(b) => (*b).into(),
        ParamValue::Text(s) | ParamValue::Choice(s) => s.clone().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigma() -> ParamDecl {
        ParamDecl {
            name: "sigma".into(),
            kind: ParamType::Float,
            default: toml::Value::Float(1.0),
            min: Some(0.1),
            max: Some(10.0),
            choices: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn defaults_fill_in_missing_parameters() {
        let p = resolve(&[sigma()], &[]).unwrap();
        assert_eq!(p[0].value, ParamValue::Float(1.0));
    }

    #[test]
    fn a_value_out_of_range_names_the_parameter_and_range() {
        let err = resolve(&[sigma()], &[("sigma".into(), "50".into())]).unwrap_err();
        assert_eq!(err, "parameter `sigma` is 50, expected 0.1 to 10");
    }

    #[test]
    fn an_unknown_parameter_lists_the_known_ones() {
        let err = resolve(&[sigma()], &[("sigam".into(), "2".into())]).unwrap_err();
        assert!(
            err.contains("unknown parameter `sigam`; known: sigma"),
            "{err}"
        );
    }
}
