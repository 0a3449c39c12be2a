//! Request bodies are read as JSON objects and checked field by field, so
//! every error can name the field it is about.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::error::ApiError;

pub struct Body(Map<String, Value>);

impl Body {
    /// Parse `bytes` as a JSON object whose keys are all in `allowed`.
    pub fn parse(bytes: &Bytes, allowed: &[&str]) -> Result<Body, ApiError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("body is not valid JSON: {e}"),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "body must be a JSON object",
            ));
        };
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::invalid(k, format!("unknown field {k}")));
        }
        Ok(Body(map))
    }

    pub fn string(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(
                field,
                format!("{field} must be a string"),
            )),
        }
    }

    pub fn required(&self, field: &str) -> Result<&str, ApiError> {
        self.string(field)?
            .ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
    }

    /// `None` when absent, `Some(None)` when null: PATCH can clear the field.
    pub fn nullable_string(&self, field: &str) -> Result<Option<Option<&str>>, ApiError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(_) => Err(ApiError::invalid(
                field,
                format!("{field} must be a string or null"),
            )),
        }
    }

    pub fn integer(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(_) => Err(ApiError::invalid(
                field,
                format!("{field} must be an integer"),
            )),
        }
    }

    /// An array of strings.
    pub fn strings(&self, field: &str) -> Result<Option<Vec<&str>>, ApiError> {
        let bad = || ApiError::invalid(field, format!("{field} must be an array of strings"));
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }
}
