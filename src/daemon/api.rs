//! The API's one request type ([`Request`]), shared by the HTTP server, the CLI's client and
//! tests, and its parser [`parse_request`] (method, path, body -> `Request`), which is pure so
//! that it can be fuzzed. Every operation is listed in [`OPERATIONS`] and in `openapi.json`.

use crate::model::{ResourceProfile, Tier};
use crate::store::{OverrideScope, OverrideSpec};
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/predict` (`getPredictedResourceProfile`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Values the caller pins over the prediction.
    #[serde(default, skip_serializing_if = "ResourceProfile::is_empty")]
    pub pinned: ResourceProfile,
}

/// The body of `POST /v1/overrides` (`overrideResourceProfile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    pub scope: OverrideScope,
    pub spec: OverrideSpec,
    pub reason: String,
}

/// The body of `POST /v1/domains`: define a domain through prae (rewritten first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineBody {
    /// The domain XML.
    pub xml: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "ResourceProfile::is_empty")]
    pub pinned: ResourceProfile,
}

/// The body of `POST /v1/builds` (`requestImageBuild`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildBody {
    pub package: String,
    #[serde(default = "default_os")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "ResourceProfile::is_empty")]
    pub pinned: ResourceProfile,
}

fn default_os() -> String {
    "debian12".into()
}

/// Every operation of the API. Front ends only parse into this; [`super::Daemon::dispatch`]
/// acts on it.
// Requests are short-lived values; boxing the bodies would only make them harder to build.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Health,
    Config,
    Metrics,
    Status,
    Predict(PredictBody),
    ListOverrides { include_inactive: bool },
    SetOverride(OverrideBody),
    RemoveOverride { id: i64 },
    Define(DefineBody),
    RequestBuild(BuildBody),
    ListBuilds,
    BuildStatus { id: u64 },
}

/// One operation: method, path template, OpenAPI `operationId`, whether it needs an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub admin: bool,
}

const fn op(method: &'static str, path: &'static str, id: &'static str, admin: bool) -> Operation {
    Operation {
        method,
        path,
        operation_id: id,
        admin,
    }
}

/// The API, as `openapi.json` documents it.
pub const OPERATIONS: &[Operation] = &[
    op("GET", "/v1/health", "getHealth", false),
    op("GET", "/v1/config", "getConfig", false),
    op("GET", "/metrics", "getMetrics", false),
    op("GET", "/v1/status", "getStatus", false),
    op("POST", "/v1/predict", "getPredictedResourceProfile", false),
    op("GET", "/v1/overrides", "listOverrides", true),
    op("POST", "/v1/overrides", "overrideResourceProfile", true),
    op("DELETE", "/v1/overrides/{id}", "removeOverride", true),
    op("POST", "/v1/domains", "defineDomain", true),
    op("POST", "/v1/builds", "requestImageBuild", true),
    op("GET", "/v1/builds", "listImageBuilds", false),
    op("GET", "/v1/builds/{id}", "getImageBuild", false),
];

/// An API error: an HTTP status and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        let status = match &e {
            E::Invalid(_) | E::Xml(_) | E::NotADomain(_) => 400,
            E::NotFound(_) => 404,
            E::Unsupported(_) => 501,
            E::Libvirt(_) => 502,
            E::Timeout(_) => 504,
            E::Io { .. } | E::Store(_) => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

fn body_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("this operation needs a JSON body"));
    }
    // serde would also accept a struct as a JSON array; the API takes objects only.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid request body: expected a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn no_body(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(())
    } else {
        Err(ApiError::bad_request("this operation takes no body"))
    }
}

fn no_query(query: Option<&str>) -> Result<(), ApiError> {
    match query {
        None | Some("") => Ok(()),
        Some(q) => Err(ApiError::bad_request(format!(
            "unknown query '{}'",
            q.chars().take(80).collect::<String>()
        ))),
    }
}

fn id_of<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} id '{s}' is not a number")))
}

/// The operation `method path` names (path without its query), with its path parameter.
pub fn operation(
    method: &str,
    path: &str,
) -> Result<(&'static Operation, Option<String>), ApiError> {
    let mut path_known = false;
    for o in OPERATIONS {
        let param = match o.path.strip_suffix("/{id}") {
            Some(prefix) => path
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('/'))
                .filter(|r| !r.is_empty() && !r.contains('/'))
                .map(|r| Some(r.to_string())),
            None => (path == o.path).then_some(None),
        };
        if let Some(param) = param {
            path_known = true;
            if o.method == method {
                return Ok((o, param));
            }
        }
    }
    let shown: String = path.chars().take(80).collect();
    if path_known {
        Err(ApiError::new(
            405,
            format!("method {method} is not allowed on {shown}"),
        ))
    } else {
        Err(ApiError::new(404, format!("no such endpoint: {shown}")))
    }
}

/// Parses one HTTP request into a [`Request`]. Never panics; every refusal is a 4xx
/// [`ApiError`] naming what is wrong.
pub fn parse_request(method: &str, path_and_query: &str, body: &[u8]) -> Result<Request, ApiError> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let (o, param) = operation(method, path)?;
    let param = param.unwrap_or_default();
    if o.operation_id != "listOverrides" {
        no_query(query)?;
    }
    let r = match o.operation_id {
        "getHealth" => Request::Health,
        "getConfig" => Request::Config,
        "getMetrics" => Request::Metrics,
        "getStatus" => Request::Status,
        "getPredictedResourceProfile" => return body_json(body).map(Request::Predict),
        "listOverrides" => {
            let include_inactive = match query {
                None | Some("") | Some("all=false") => false,
                Some("all=true") => true,
                Some(q) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query '{}' (expected all=true or all=false)",
                        q.chars().take(80).collect::<String>()
                    )));
                }
            };
            Request::ListOverrides { include_inactive }
        }
        "overrideResourceProfile" => return body_json(body).map(Request::SetOverride),
        "removeOverride" => Request::RemoveOverride {
            id: id_of(&param, "override")?,
        },
        "defineDomain" => return body_json(body).map(Request::Define),
        "requestImageBuild" => return body_json(body).map(Request::RequestBuild),
        "listImageBuilds" => Request::ListBuilds,
        "getImageBuild" => Request::BuildStatus {
            id: id_of(&param, "build")?,
        },
        other => {
            return Err(ApiError::new(
                500,
                format!("operation {other} has no parser"),
            ));
        }
    };
    no_body(body)?;
    Ok(r)
}

impl Request {
    /// The HTTP form of this request: method, path (with query) and JSON body, for clients.
    pub fn to_http(&self) -> (&'static str, String, Option<String>) {
        match self {
            Request::Health => ("GET", "/v1/health".into(), None),
            Request::Config => ("GET", "/v1/config".into(), None),
            Request::Metrics => ("GET", "/metrics".into(), None),
            Request::Status => ("GET", "/v1/status".into(), None),
            Request::Predict(b) => ("POST", "/v1/predict".into(), json(b)),
            Request::ListOverrides { include_inactive } => (
                "GET",
                if *include_inactive {
                    "/v1/overrides?all=true".into()
                } else {
                    "/v1/overrides".into()
                },
                None,
            ),
            Request::SetOverride(b) => ("POST", "/v1/overrides".into(), json(b)),
            Request::RemoveOverride { id } => ("DELETE", format!("/v1/overrides/{id}"), None),
            Request::Define(b) => ("POST", "/v1/domains".into(), json(b)),
            Request::RequestBuild(b) => ("POST", "/v1/builds".into(), json(b)),
            Request::ListBuilds => ("GET", "/v1/builds".into(), None),
            Request::BuildStatus { id } => ("GET", format!("/v1/builds/{id}"), None),
        }
    }
}

/// Serializing these plain structs cannot fail (string keys only).
fn json<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_string(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips_through_http() {
        let reqs = vec![
            Request::Health,
            Request::Config,
            Request::Metrics,
            Request::Status,
            Request::Predict(PredictBody {
                package: Some("nginx".into()),
                tier: Some(Tier::Low),
                ..Default::default()
            }),
            Request::ListOverrides {
                include_inactive: true,
            },
            Request::ListOverrides {
                include_inactive: false,
            },
            Request::SetOverride(OverrideBody {
                scope: OverrideScope::Domain { name: "d".into() },
                spec: OverrideSpec::Exact {
                    profile: ResourceProfile {
                        vcpus: Some(2),
                        ..Default::default()
                    },
                },
                reason: "r".into(),
            }),
            Request::RemoveOverride { id: 7 },
            Request::Define(DefineBody {
                xml: "<domain/>".into(),
                tier: None,
                pinned: ResourceProfile::default(),
            }),
            Request::RequestBuild(BuildBody {
                package: "hello".into(),
                os: "debian12".into(),
                tier: None,
                pinned: ResourceProfile::default(),
            }),
            Request::ListBuilds,
            Request::BuildStatus { id: 3 },
        ];
        for r in reqs {
            let (m, p, b) = r.to_http();
            let back = parse_request(m, &p, b.unwrap_or_default().as_bytes()).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn refusals_are_4xx_and_name_the_problem() {
        let e = parse_request("GET", "/v2/nothing", b"").unwrap_err();
        assert_eq!(e.status, 404);
        assert!(e.message.contains("/v2/nothing"));
        assert_eq!(
            parse_request("PUT", "/v1/predict", b"").unwrap_err().status,
            405
        );
        let e = parse_request("POST", "/v1/predict", b"{\"package\": 3}").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("invalid type"), "{}", e.message);
        let e = parse_request("POST", "/v1/predict", b"{\"teir\": \"low\"}").unwrap_err();
        assert!(e.message.contains("unknown field `teir`"), "{}", e.message);
        let e = parse_request("POST", "/v1/predict", b"{").unwrap_err();
        assert!(e.message.contains("EOF"), "{}", e.message);
        let e = parse_request("POST", "/v1/predict", b"").unwrap_err();
        assert!(e.message.contains("needs a JSON body"), "{}", e.message);
        let e = parse_request("GET", "/v1/health", b"{}").unwrap_err();
        assert!(e.message.contains("no body"), "{}", e.message);
        let e = parse_request("DELETE", "/v1/overrides/x1", b"").unwrap_err();
        assert!(e.message.contains("'x1'"), "{}", e.message);
        let e = parse_request("GET", "/v1/health?x=1", b"").unwrap_err();
        assert!(e.message.contains("x=1"), "{}", e.message);
        assert_eq!(
            parse_request("GET", "/v1/builds/1/2", b"")
                .unwrap_err()
                .status,
            404
        );
    }
}
