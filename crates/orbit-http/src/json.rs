//! Request bodies are read as JSON objects and checked field by field, so
//! every error can name the field it is about.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A JSON object; errors name its fields with `prefix` in front (empty
/// for a request body, `recall.` for the object in its `recall` field).
pub struct Body {
    map: Map<String, Value>,
    prefix: String,
}

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
        Body::object_of(map, allowed, String::new())
    }

    fn object_of(
        map: Map<String, Value>,
        allowed: &[&str],
        prefix: String,
    ) -> Result<Body, ApiError> {
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let k = format!("{prefix}{k}");
            return Err(ApiError::invalid(&k, format!("unknown field {k}")));
        }
        Ok(Body { map, prefix })
    }

    /// The field's name as errors give it (with the prefix).
    pub fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn wrong(&self, field: &str, what: &str) -> ApiError {
        let f = self.name(field);
        ApiError::invalid(&f, format!("{f} must be {what}"))
    }

    /// 422 `{field} is required`.
    pub fn missing(&self, field: &str) -> ApiError {
        let f = self.name(field);
        ApiError::invalid(&f, format!("{f} is required"))
    }

    pub fn string(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(field, "a string")),
        }
    }

    pub fn required(&self, field: &str) -> Result<&str, ApiError> {
        self.string(field)?.ok_or_else(|| self.missing(field))
    }

    /// `None` when absent, `Some(None)` when null: PATCH can clear the field.
    pub fn nullable_string(&self, field: &str) -> Result<Option<Option<&str>>, ApiError> {
        match self.map.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(_) => Err(self.wrong(field, "a string or null")),
        }
    }

    pub fn integer(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(_) => Err(self.wrong(field, "an integer")),
        }
    }

    pub fn boolean(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(field, "true or false")),
        }
    }

    /// A nested object whose keys are all in `allowed`: `None` when absent,
    /// `Some(None)` when null. Its errors name fields as `field.key`.
    pub fn object(&self, field: &str, allowed: &[&str]) -> Result<Option<Option<Body>>, ApiError> {
        match self.map.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::Object(m)) => {
                Body::object_of(m.clone(), allowed, format!("{}.", self.name(field)))
                    .map(|b| Some(Some(b)))
            }
            Some(_) => Err(self.wrong(field, "an object")),
        }
    }

    /// An array of strings.
    pub fn strings(&self, field: &str) -> Result<Option<Vec<&str>>, ApiError> {
        let bad = || self.wrong(field, "an array of strings");
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    /// An array of objects whose keys are all in `allowed`; errors name
    /// their fields as `field[i].key`.
    pub fn objects(&self, field: &str, allowed: &[&str]) -> Result<Option<Vec<Body>>, ApiError> {
        let bad = || self.wrong(field, "an array of objects");
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => {
                        Body::object_of(m.clone(), allowed, format!("{}[{i}].", self.name(field)))
                    }
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }
}
