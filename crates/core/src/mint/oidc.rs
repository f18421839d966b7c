//! GitHub Actions OIDC tokens: everything about verifying one except the RSA arithmetic.
//!
//! **Invariant:** a token is trusted only after, in fullsend's order, its header names
//! RS256 and a `kid`, its claims pass [`check_claims`] (issuer, audience, `exp`, `iat`,
//! `repository`), and only then is a key looked up and the signature over
//! [`UnverifiedJwt::signing_input`] checked (by the adapter, with Web Crypto) against a key
//! from a [`JwkSet`] that came from the issuer's own discovery document. Claims are checked
//! before any key fetch so junk tokens never make the worker call GitHub.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

/// fullsend's issuer; its Worker hard-codes it, ghplane lets `OIDC_ISSUER` override it.
pub const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// fullsend's `mintconsts.OIDCAudience`; the client action asks for exactly this.
pub const DEFAULT_AUDIENCE: &str = "fullsend-mint";
/// Leeway on `exp` and `iat`.
pub const CLOCK_SKEW_SECS: i64 = 30;
/// A fetched key set is fresh this long.
pub const JWKS_TTL_SECS: i64 = 3600;
/// After a refresh that still lacked a `kid`, unknown `kid`s are refused without another
/// fetch for this long, so random `kid`s cannot make the worker hammer the issuer.
pub const UNKNOWN_KID_MIN_INTERVAL_SECS: i64 = 30;
/// When a refresh fails, keys fetched within this long still verify.
pub const STALE_KEYS_MAX_AGE_SECS: i64 = 86_400;
/// fullsend reads at most this much of a discovery document or key set.
pub const MAX_JWKS_RESPONSE_BYTES: usize = 512 * 1024;
/// Smaller RSA moduli are ignored.
pub const MIN_RSA_BITS: usize = 2048;

/// Go's `base64.RawURLEncoding`: no padding, and (unlike the `base64` crate's default)
/// non-zero trailing bits accepted.
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Why a token was not accepted. The client only ever reads "authentication failed";
/// these are for logs and audit, worded as fullsend logs them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("invalid JWT format: expected 3 segments, got {0}")]
    Segments(usize),
    #[error("decoding JWT {0}")]
    Base64(&'static str),
    #[error("parsing JWT {0}")]
    Json(&'static str),
    #[error("unsupported signing algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("missing kid in JWT header")]
    MissingKid,
    #[error("unexpected issuer: {0}")]
    UnexpectedIssuer(String),
    #[error("OIDC audience must be configured")]
    AudienceNotConfigured,
    #[error("audience mismatch")]
    AudienceMismatch,
    #[error("token expired")]
    Expired,
    #[error("missing iat claim")]
    MissingIat,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("missing repository claim")]
    MissingRepository,
    #[error("key {0:?} not found in JWKS")]
    UnknownKid(String),
    #[error("getting signing key: {0}")]
    KeysUnavailable(String),
    #[error("invalid JWT signature")]
    BadSignature,
    /// The token is genuine but the policy does not admit its workflow (see `policy`).
    #[error("token authorization failed: {0}")]
    NotAuthorized(String),
    #[error("workflow ref validation failed: {0}")]
    WorkflowRef(String),
}

impl AuthError {
    /// A stable snake_case name for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Segments(_) | AuthError::Base64(_) | AuthError::Json(_) => "malformed_jwt",
            AuthError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            AuthError::MissingKid => "missing_kid",
            AuthError::UnexpectedIssuer(_) => "unexpected_issuer",
            AuthError::AudienceNotConfigured => "audience_not_configured",
            AuthError::AudienceMismatch => "audience_mismatch",
            AuthError::Expired => "token_expired",
            AuthError::MissingIat => "missing_iat",
            AuthError::IssuedInFuture => "issued_in_future",
            AuthError::MissingRepository => "missing_repository",
            AuthError::UnknownKid(_) => "unknown_kid",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::BadSignature => "bad_signature",
            AuthError::NotAuthorized(_) => "caller_not_enrolled",
            AuthError::WorkflowRef(_) => "workflow_not_allowed",
        }
    }
}

/// A compact JWT split and decoded, signature not yet checked.
#[derive(Clone, PartialEq, Eq)]
pub struct UnverifiedJwt {
    pub kid: String,
    /// The claims segment, base64url-decoded: the input of [`check_claims`].
    pub claims_json: Vec<u8>,
    /// `header "." claims`, the bytes RSASSA-PKCS1-v1_5/SHA-256 signed.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for UnverifiedJwt {
    // The token is a bearer credential until it expires: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedJwt")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Splits `token`, decodes its header and requires `alg` RS256 and a `kid`, decodes the
/// claims and signature segments.
pub fn decode_jwt(token: &str) -> Result<UnverifiedJwt, AuthError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(AuthError::Segments(parts.len()));
    }
    let header = RAW_URL
        .decode(parts[0])
        .map_err(|_| AuthError::Base64("header"))?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| AuthError::Json("header"))?;
    let alg = go_string(&header, "alg").map_err(|_| AuthError::Json("header"))?;
    let kid = go_string(&header, "kid").map_err(|_| AuthError::Json("header"))?;
    go_string(&header, "typ").map_err(|_| AuthError::Json("header"))?;
    if !matches!(header, Value::Object(_) | Value::Null) {
        return Err(AuthError::Json("header"));
    }
    if alg != "RS256" {
        return Err(AuthError::UnsupportedAlgorithm(crate::ids::truncate(
            &alg, 40,
        )));
    }
    if kid.is_empty() {
        return Err(AuthError::MissingKid);
    }
    let claims_json = RAW_URL
        .decode(parts[1])
        .map_err(|_| AuthError::Base64("claims"))?;
    let signature = RAW_URL
        .decode(parts[2])
        .map_err(|_| AuthError::Base64("signature"))?;
    Ok(UnverifiedJwt {
        kid,
        claims_json,
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature,
    })
}

/// The claims of a GitHub Actions OIDC token that the mint decides on or records.
///
/// The first block is what fullsend reads and is typed as strictly as Go types it (a
/// wrong JSON type fails the token). The second is for the audit trail only and is read
/// leniently (a number becomes its decimal text, anything else is absent), so it can never
/// refuse a token fullsend would accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionsClaims {
    pub iss: String,
    pub aud: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    /// `owner/name` of the repository whose workflow runs.
    pub repository: String,
    pub repository_owner: String,
    /// `owner/repo/.github/workflows/file.yml@ref` of the (possibly reusable) workflow
    /// running the job: what the workflow allow-lists judge.
    pub job_workflow_ref: String,

    pub sub: Option<String>,
    pub repository_id: Option<String>,
    pub repository_owner_id: Option<String>,
    pub workflow_ref: Option<String>,
    pub run_id: Option<String>,
    pub run_attempt: Option<String>,
    pub actor: Option<String>,
    pub jti: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub event_name: Option<String>,
}

/// Decodes the claims like Go into fullsend's `Claims` and checks them in fullsend's order:
/// `iss` equal to `issuer`; `aud` (string or array) containing `audience`; `exp` not past
/// `now − 30 s` (a missing `exp` is 0, so expired); `iat` present and not after
/// `now + 30 s`; `repository` non-empty.
pub fn check_claims(
    claims_json: &[u8],
    issuer: &str,
    audience: &str,
    now_unix: i64,
) -> Result<ActionsClaims, AuthError> {
    let bad = |()| AuthError::Json("claims");
    let v: Value = serde_json::from_slice(claims_json).map_err(|_| AuthError::Json("claims"))?;
    if !matches!(v, Value::Object(_) | Value::Null) {
        return Err(AuthError::Json("claims"));
    }
    let claims = ActionsClaims {
        iss: go_string(&v, "iss").map_err(bad)?,
        aud: go_audience(&v).map_err(bad)?,
        iat: go_int(&v, "iat").map_err(bad)?,
        exp: go_int(&v, "exp").map_err(bad)?,
        repository: go_string(&v, "repository").map_err(bad)?,
        repository_owner: go_string(&v, "repository_owner").map_err(bad)?,
        job_workflow_ref: go_string(&v, "job_workflow_ref").map_err(bad)?,
        sub: loose(&v, "sub"),
        repository_id: loose(&v, "repository_id"),
        repository_owner_id: loose(&v, "repository_owner_id"),
        workflow_ref: loose(&v, "workflow_ref"),
        run_id: loose(&v, "run_id"),
        run_attempt: loose(&v, "run_attempt"),
        actor: loose(&v, "actor"),
        jti: loose(&v, "jti"),
        git_ref: loose(&v, "ref"),
        sha: loose(&v, "sha"),
        event_name: loose(&v, "event_name"),
    };
    if claims.iss != issuer {
        return Err(AuthError::UnexpectedIssuer(crate::ids::truncate(
            &claims.iss,
            120,
        )));
    }
    if audience.is_empty() {
        return Err(AuthError::AudienceNotConfigured);
    }
    if !claims.aud.iter().any(|a| a == audience) {
        return Err(AuthError::AudienceMismatch);
    }
    if claims.exp <= now_unix.saturating_sub(CLOCK_SKEW_SECS) {
        return Err(AuthError::Expired);
    }
    if claims.iat == 0 {
        return Err(AuthError::MissingIat);
    }
    if claims.iat > now_unix.saturating_add(CLOCK_SKEW_SECS) {
        return Err(AuthError::IssuedInFuture);
    }
    if claims.repository.is_empty() {
        return Err(AuthError::MissingRepository);
    }
    Ok(claims)
}

/// A Go `string` field: absent or `null` is "", any other non-string fails the decode.
fn go_string(v: &Value, key: &str) -> Result<String, ()> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(()),
    }
}

/// A Go `int64` field: only an integer literal in range decodes.
fn go_int(v: &Value, key: &str) -> Result<i64, ()> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or(()),
        Some(_) => Err(()),
    }
}

/// fullsend's `Audience.UnmarshalJSON`: a non-blank string, or a non-empty array of
/// non-blank strings. Absent leaves it empty (a mismatch later).
fn go_audience(v: &Value) -> Result<Vec<String>, ()> {
    let blank = |s: &str| s.trim().is_empty();
    match v.get("aud") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if !blank(s) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) if !blank(s) => Ok(s.clone()),
                _ => Err(()),
            })
            .collect(),
        Some(_) => Err(()),
    }
}

fn loose(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RSA signing key from the issuer's key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaJwk {
    pub kid: String,
    /// Modulus, big-endian, without leading zero bytes.
    pub n: Vec<u8>,
    /// Public exponent, big-endian, without leading zero bytes.
    pub e: Vec<u8>,
}

impl RsaJwk {
    /// The JWK Web Crypto's `importKey("jwk", …, {name:"RSASSA-PKCS1-v1_5", hash:"SHA-256"})`
    /// takes.
    pub fn to_jwk_json(&self) -> Value {
        serde_json::json!({
            "kty": "RSA",
            "alg": "RS256",
            "ext": true,
            "n": RAW_URL.encode(&self.n),
            "e": RAW_URL.encode(&self.e),
        })
    }
}

/// Usable keys by `kid` (a later duplicate replaces an earlier one, as in fullsend's map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: BTreeMap<String, RsaJwk>,
}

impl JwkSet {
    pub fn get(&self, kid: &str) -> Option<&RsaJwk> {
        self.keys.get(kid)
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// Why a discovery document or key set was refused (logged; the client sees 401).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwksError {
    #[error("parsing discovery document")]
    DiscoveryJson,
    #[error("missing jwks_uri in discovery document")]
    MissingJwksUri,
    #[error("issuer mismatch in discovery document: got {got:?}, want {want:?}")]
    IssuerMismatch { got: String, want: String },
    #[error("jwks_uri origin ({jwks}) does not match issuer origin ({issuer})")]
    OriginMismatch { jwks: String, issuer: String },
    #[error("parsing JWKS")]
    JwksJson,
}

/// Where the issuer's discovery document is.
pub fn discovery_url(issuer: &str) -> String {
    format!("{issuer}/.well-known/openid-configuration")
}

/// Checks a discovery document (200 body) and returns its `jwks_uri`: it must be present,
/// the document's `issuer` must equal ours exactly, and `jwks_uri` must be on the issuer's
/// scheme and host, so a document cannot send us to someone else's keys.
pub fn check_discovery(body: &[u8], issuer: &str) -> Result<String, JwksError> {
    let body = &body[..body.len().min(MAX_JWKS_RESPONSE_BYTES)];
    let v: Value = serde_json::from_slice(body).map_err(|_| JwksError::DiscoveryJson)?;
    if !matches!(v, Value::Object(_) | Value::Null) {
        return Err(JwksError::DiscoveryJson);
    }
    let doc_issuer = go_string(&v, "issuer").map_err(|_| JwksError::DiscoveryJson)?;
    let jwks_uri = go_string(&v, "jwks_uri").map_err(|_| JwksError::DiscoveryJson)?;
    if jwks_uri.is_empty() {
        return Err(JwksError::MissingJwksUri);
    }
    if doc_issuer != issuer {
        return Err(JwksError::IssuerMismatch {
            got: crate::ids::truncate(&doc_issuer, 200),
            want: issuer.to_owned(),
        });
    }
    let (a, b) = (origin(&jwks_uri), origin(issuer));
    if a.is_none() || a != b {
        let show = |o: Option<(String, String)>| {
            o.map_or(String::from("://"), |(s, h)| format!("{s}://{h}"))
        };
        return Err(JwksError::OriginMismatch {
            jwks: show(a),
            issuer: show(b),
        });
    }
    Ok(jwks_uri)
}

/// (scheme, host[:port]) as Go's `url.Parse` splits them: scheme lowercased, host as
/// written, user info dropped. `None` for a URL without an authority.
fn origin(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority = rest.strip_prefix("//")?;
    if !scheme_ok {
        return None;
    }
    let end = authority.find(['/', '?', '#']).unwrap_or(authority.len());
    let authority = &authority[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some((scheme.to_ascii_lowercase(), host.to_owned()))
}

/// Parses a key set (200 body). Keeps RSA keys with a `kid` whose modulus is at least
/// 2048 bits and whose exponent Go's RSA would accept; skips keys that say they are for
/// another algorithm or use. A malformed document is an error; a bad key is skipped.
pub fn parse_jwks(body: &[u8]) -> Result<JwkSet, JwksError> {
    let body = &body[..body.len().min(MAX_JWKS_RESPONSE_BYTES)];
    let v: Value = serde_json::from_slice(body).map_err(|_| JwksError::JwksJson)?;
    let keys = match &v {
        Value::Null => return Ok(JwkSet::default()),
        Value::Object(_) => match v.get("keys") {
            None | Some(Value::Null) => return Ok(JwkSet::default()),
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(JwksError::JwksJson),
        },
        _ => return Err(JwksError::JwksJson),
    };
    let mut set = JwkSet::default();
    for k in keys {
        if !matches!(k, Value::Object(_) | Value::Null) {
            return Err(JwksError::JwksJson);
        }
        let field = |name| go_string(k, name).map_err(|_| JwksError::JwksJson);
        let (kty, alg, usage, kid, n, e) = (
            field("kty")?,
            field("alg")?,
            field("use")?,
            field("kid")?,
            field("n")?,
            field("e")?,
        );
        if kty != "RSA" || kid.is_empty() {
            continue;
        }
        if !(alg.is_empty() || alg == "RS256") || !(usage.is_empty() || usage == "sig") {
            continue;
        }
        let (Ok(n), Ok(e)) = (RAW_URL.decode(&n), RAW_URL.decode(&e)) else {
            continue;
        };
        let (n, e) = (strip_zeros(n), strip_zeros(e));
        if bit_len(&n) < MIN_RSA_BITS || !exponent_ok(&e) {
            continue;
        }
        set.keys.insert(kid.clone(), RsaJwk { kid, n, e });
    }
    Ok(set)
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.drain(..first);
    b
}

fn bit_len(b: &[u8]) -> usize {
    b.first().map_or(0, |&top| {
        (b.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    })
}

/// Go's RSA refuses to verify with an exponent below 2 or above 2^31 − 1.
fn exponent_ok(e: &[u8]) -> bool {
    if e.len() > 4 {
        return false;
    }
    // `+`, not `|`: the same here (the low byte is free), and no mutation of it is equivalent.
    let v = e.iter().fold(0u64, |acc, &b| (acc << 8) + u64::from(b));
    (2..=0x7fff_ffff).contains(&v)
}

/// What to do for a token's `kid`, given the cached key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// Verify with the cached key.
    UseCached,
    /// Refuse now: the `kid` was missing from a refresh less than 30 s ago.
    RejectUnknownKid,
    /// Fetch discovery (once; its `jwks_uri` can be kept) and the key set, then decide
    /// with [`after_refresh`] or, if the fetch failed, [`after_failed_refresh`].
    Refresh,
}

/// fullsend's `getKey` before any fetch. `fetched_at` is when the cached set was fetched
/// (`None`: never); `last_unknown_kid_at` is when a refresh last came back without the
/// `kid` asked for. Times are unix seconds.
pub fn key_action(
    now: i64,
    kid_cached: bool,
    fetched_at: Option<i64>,
    last_unknown_kid_at: Option<i64>,
) -> KeyAction {
    let fresh = fetched_at.is_some_and(|t| now - t <= JWKS_TTL_SECS);
    if kid_cached && fresh {
        return KeyAction::UseCached;
    }
    let recent_miss = last_unknown_kid_at.is_some_and(|t| now - t < UNKNOWN_KID_MIN_INTERVAL_SECS);
    if !kid_cached && recent_miss {
        return KeyAction::RejectUnknownKid;
    }
    KeyAction::Refresh
}

/// After a successful refresh: the key, or [`AuthError::UnknownKid`] — in which case the
/// caller records `now` as the last unknown-`kid` time.
pub fn after_refresh<'a>(set: &'a JwkSet, kid: &str) -> Result<&'a RsaJwk, AuthError> {
    set.get(kid)
        .ok_or_else(|| AuthError::UnknownKid(crate::ids::truncate(kid, 80)))
}

/// After a failed refresh: whether the previously cached key may still be used (it exists
/// and its set is at most 24 h old). A failed refresh changes nothing in the cache.
pub fn after_failed_refresh(now: i64, kid_cached: bool, fetched_at: Option<i64>) -> bool {
    kid_cached && fetched_at.is_some_and(|t| now - t <= STALE_KEYS_MAX_AGE_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn b64(v: &Value) -> String {
        RAW_URL.encode(v.to_string())
    }

    fn token(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            b64(&header),
            b64(&claims),
            RAW_URL.encode([1, 2, 3])
        )
    }

    fn rs256() -> Value {
        json!({"alg":"RS256","typ":"JWT","kid":"k1"})
    }

    fn claims() -> Value {
        json!({
            "iss": DEFAULT_ISSUER,
            "aud": DEFAULT_AUDIENCE,
            "iat": NOW,
            "exp": NOW + 600,
            "repository": "test-org/test-repo",
            "repository_owner": "test-org",
            "job_workflow_ref": "test-org/.fullsend/.github/workflows/code.yml@refs/heads/main",
            "workflow_ref": "test-org/test-repo/.github/workflows/x.yml@refs/heads/main",
            "run_id": "123",
            "run_attempt": "2",
            "actor": "octocat",
            "jti": "abc",
            "ref": "refs/heads/main",
            "sha": "deadbeef",
            "event_name": "issues",
            "repository_id": 42,
        })
    }

    fn check(c: Value) -> Result<ActionsClaims, AuthError> {
        check_claims(
            c.to_string().as_bytes(),
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
            NOW,
        )
    }

    fn with(key: &str, v: Value) -> Value {
        let mut c = claims();
        c[key] = v;
        c
    }

    fn without(key: &str) -> Value {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(key);
        c
    }

    #[test]
    fn decodes_a_well_formed_token() {
        let t = token(rs256(), claims());
        let j = decode_jwt(&t).unwrap();
        assert_eq!(j.kid, "k1");
        assert_eq!(j.signature, [1, 2, 3]);
        assert_eq!(j.signing_input, t.rsplit_once('.').unwrap().0);
        let c = check_claims(&j.claims_json, DEFAULT_ISSUER, DEFAULT_AUDIENCE, NOW).unwrap();
        assert_eq!(c.repository, "test-org/test-repo");
        assert_eq!(c.run_id.as_deref(), Some("123"));
        assert_eq!(c.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(c.repository_id.as_deref(), Some("42"));
        assert!(!format!("{j:?}").contains(&t[..10]));
        // Only the key id shows: a debug line never carries the token.
        assert_eq!(format!("{j:?}"), r#"UnverifiedJwt { kid: "k1", .. }"#);
    }

    #[test]
    fn header_rules() {
        assert_eq!(decode_jwt("a.b"), Err(AuthError::Segments(2)));
        assert_eq!(decode_jwt("a.b.c.d"), Err(AuthError::Segments(4)));
        let hs = token(json!({"alg":"HS256","kid":"k1"}), claims());
        assert_eq!(
            decode_jwt(&hs),
            Err(AuthError::UnsupportedAlgorithm("HS256".into()))
        );
        let none = token(json!({"alg":"none","kid":"k1"}), claims());
        assert!(matches!(
            decode_jwt(&none),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
        let lower = token(json!({"alg":"rs256","kid":"k1"}), claims());
        assert!(matches!(
            decode_jwt(&lower),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
        let nokid = token(json!({"alg":"RS256"}), claims());
        assert_eq!(decode_jwt(&nokid), Err(AuthError::MissingKid));
        let emptykid = token(json!({"alg":"RS256","kid":""}), claims());
        assert_eq!(decode_jwt(&emptykid), Err(AuthError::MissingKid));
        let numkid = token(json!({"alg":"RS256","kid":7}), claims());
        assert_eq!(decode_jwt(&numkid), Err(AuthError::Json("header")));
        let padded = format!("{}=.e30.AA", b64(&rs256()));
        assert!(decode_jwt(&padded).is_err());
        let badsig = format!("{}.{}.!!", b64(&rs256()), b64(&claims()));
        assert_eq!(decode_jwt(&badsig), Err(AuthError::Base64("signature")));
    }

    #[test]
    fn issuer_and_audience() {
        assert!(matches!(
            check(with("iss", json!("https://evil.example"))),
            Err(AuthError::UnexpectedIssuer(_))
        ));
        assert!(matches!(
            check(with("iss", json!(format!("{DEFAULT_ISSUER}/")))),
            Err(AuthError::UnexpectedIssuer(_))
        ));
        assert_eq!(
            check(with("aud", json!("other"))),
            Err(AuthError::AudienceMismatch)
        );
        assert_eq!(check(without("aud")), Err(AuthError::AudienceMismatch));
        assert!(check(with("aud", json!(["other", DEFAULT_AUDIENCE]))).is_ok());
        assert_eq!(
            check(with("aud", json!(["other", "x"]))),
            Err(AuthError::AudienceMismatch)
        );
        for bad in [
            json!(""),
            json!("  "),
            json!([]),
            json!(["ok", ""]),
            json!(5),
            json!(null),
        ] {
            assert_eq!(
                check(with("aud", bad.clone())),
                Err(AuthError::Json("claims")),
                "{bad}"
            );
        }
        assert_eq!(
            check_claims(claims().to_string().as_bytes(), DEFAULT_ISSUER, "", NOW),
            Err(AuthError::AudienceNotConfigured)
        );
        assert!(check_claims(
            with("aud", json!("custom")).to_string().as_bytes(),
            DEFAULT_ISSUER,
            "custom",
            NOW
        )
        .is_ok());
    }

    #[test]
    fn expiry_with_leeway() {
        assert_eq!(check(with("exp", json!(NOW - 30))), Err(AuthError::Expired));
        assert!(check(with("exp", json!(NOW - 29))).is_ok());
        assert_eq!(check(without("exp")), Err(AuthError::Expired));
        assert_eq!(
            check(with("exp", json!(1.8e9))),
            Err(AuthError::Json("claims"))
        );
        assert_eq!(
            check(with("exp", json!("1800000600"))),
            Err(AuthError::Json("claims"))
        );
    }

    #[test]
    fn issued_at_with_leeway() {
        assert_eq!(check(without("iat")), Err(AuthError::MissingIat));
        assert_eq!(check(with("iat", json!(0))), Err(AuthError::MissingIat));
        assert_eq!(
            check(with("iat", json!(NOW + 31))),
            Err(AuthError::IssuedInFuture)
        );
        assert!(check(with("iat", json!(NOW + 30))).is_ok());
    }

    #[test]
    fn repository_required_and_typed() {
        assert_eq!(
            check(with("repository", json!(""))),
            Err(AuthError::MissingRepository)
        );
        assert_eq!(
            check(without("repository")),
            Err(AuthError::MissingRepository)
        );
        assert_eq!(
            check(with("repository", json!(1))),
            Err(AuthError::Json("claims"))
        );
        assert_eq!(
            check(with("job_workflow_ref", json!(["x"]))),
            Err(AuthError::Json("claims"))
        );
        // Audit-only claims never refuse a token.
        assert!(check(with("run_id", json!({"x":1})))
            .unwrap()
            .run_id
            .is_none());
        assert!(check_claims(b"[]", DEFAULT_ISSUER, DEFAULT_AUDIENCE, NOW).is_err());
        assert!(matches!(
            check_claims(b"null", DEFAULT_ISSUER, DEFAULT_AUDIENCE, NOW),
            Err(AuthError::UnexpectedIssuer(_))
        ));
    }

    fn key_json(kid: &str, bits: usize) -> Value {
        let mut n = vec![0u8; bits / 8];
        n[0] = 0x80;
        json!({"kty":"RSA","alg":"RS256","use":"sig","kid":kid,
               "n": RAW_URL.encode(&n), "e": RAW_URL.encode([1, 0, 1])})
    }

    #[test]
    fn origin_splits_like_go() {
        assert_eq!(
            origin("HTTPS://user@Host:8443/x?y"),
            Some(("https".into(), "Host:8443".into()))
        );
        assert_eq!(
            origin("h+t.t-p://a#f"),
            Some(("h+t.t-p".into(), "a".into()))
        );
        for bad in ["h_ttp://a", "1http://a", "://a", "https:a", "nope"] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_sizes_and_exponents_at_their_limits() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[0xff]), 8);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01, 0, 0]), 17);
        assert!(!exponent_ok(&[1]));
        assert!(exponent_ok(&[2]));
        assert!(exponent_ok(&[1, 0, 1]));
        assert!(exponent_ok(&[0x7f, 0xff, 0xff, 0xff]));
        assert!(!exponent_ok(&[0x80, 0, 0, 0]));
        assert!(!exponent_ok(&[1, 0, 0, 0, 3]));
        // Longer than eight bytes would wrap the fold: refused on length first.
        assert!(!exponent_ok(&[1, 0, 0, 0, 0, 0, 0, 0, 3]));
    }

    #[test]
    fn a_null_key_set_is_empty() {
        assert!(parse_jwks(b"null").unwrap().is_empty());
        assert!(parse_jwks(br#"{"keys":null}"#).unwrap().is_empty());
        assert_eq!(parse_jwks(b"[]"), Err(JwksError::JwksJson));
    }

    #[test]
    fn jwks_keeps_usable_rsa_keys() {
        let mut ec = key_json("ec", 2048);
        ec["kty"] = json!("EC");
        let mut enc = key_json("enc", 2048);
        enc["use"] = json!("enc");
        let mut ps = key_json("ps", 2048);
        ps["alg"] = json!("PS256");
        let mut bare = key_json("bare", 2048);
        bare.as_object_mut().unwrap().remove("alg");
        bare.as_object_mut().unwrap().remove("use");
        let mut e1 = key_json("e1", 2048);
        e1["e"] = json!(RAW_URL.encode([1]));
        let mut badn = key_json("badn", 2048);
        badn["n"] = json!("!!");
        let body = json!({"keys":[
            key_json("k1", 2048), key_json("small", 1024), key_json("", 2048),
            ec, enc, ps, bare, e1, badn, key_json("k4", 4096)
        ]});
        let set = parse_jwks(body.to_string().as_bytes()).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["bare", "k1", "k4"]);
        assert_eq!((set.len(), set.is_empty()), (3, false));
        let k = set.get("k1").unwrap();
        assert_eq!((k.n.len(), k.e.as_slice()), (256, &[1u8, 0, 1][..]));
        assert_eq!(k.to_jwk_json()["e"], "AQAB");
        // A leading zero byte does not count toward the size.
        let mut n = vec![0u8; 257];
        n[1] = 0x80;
        let padded = json!({"keys":[{"kty":"RSA","kid":"z","n":RAW_URL.encode(&n),"e":"AQAB"}]});
        assert_eq!(
            parse_jwks(padded.to_string().as_bytes())
                .unwrap()
                .get("z")
                .unwrap()
                .n
                .len(),
            256
        );
        assert_eq!(parse_jwks(b"nope"), Err(JwksError::JwksJson));
        assert_eq!(
            parse_jwks(br#"{"keys":[{"kid":1}]}"#),
            Err(JwksError::JwksJson)
        );
        assert!(parse_jwks(b"{}").unwrap().is_empty());
    }

    #[test]
    fn discovery_checks() {
        let doc = |iss: &str, uri: &str| json!({"issuer":iss,"jwks_uri":uri}).to_string();
        let iss = DEFAULT_ISSUER;
        assert_eq!(
            check_discovery(doc(iss, &format!("{iss}/.well-known/jwks")).as_bytes(), iss),
            Ok(format!("{iss}/.well-known/jwks"))
        );
        assert_eq!(
            discovery_url(iss),
            "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
        );
        assert_eq!(
            check_discovery(json!({"issuer":iss}).to_string().as_bytes(), iss),
            Err(JwksError::MissingJwksUri)
        );
        assert!(matches!(
            check_discovery(doc("https://evil", &format!("{iss}/jwks")).as_bytes(), iss),
            Err(JwksError::IssuerMismatch { .. })
        ));
        for uri in [
            "https://evil.example/jwks",
            "http://token.actions.githubusercontent.com/jwks",
            "https://token.actions.githubusercontent.com:8443/jwks",
            "/jwks",
        ] {
            assert!(
                matches!(
                    check_discovery(doc(iss, uri).as_bytes(), iss),
                    Err(JwksError::OriginMismatch { .. })
                ),
                "{uri}"
            );
        }
        assert!(check_discovery(
            doc(iss, "HTTPS://token.actions.githubusercontent.com/keys").as_bytes(),
            iss
        )
        .is_ok());
        let local = "http://127.0.0.1:8787";
        assert!(
            check_discovery(doc(local, "http://127.0.0.1:8787/jwks").as_bytes(), local).is_ok()
        );
        assert_eq!(check_discovery(b"[", iss), Err(JwksError::DiscoveryJson));
    }

    #[test]
    fn cache_policy() {
        use KeyAction::*;
        // Nothing cached yet.
        assert_eq!(key_action(NOW, false, None, None), Refresh);
        // Cached and fresh (TTL inclusive, as `time.Since > TTL` expires).
        assert_eq!(key_action(NOW, true, Some(NOW - 3600), None), UseCached);
        assert_eq!(key_action(NOW, true, Some(NOW - 3601), None), Refresh);
        // Unknown kid: at most one refresh per 30 s.
        assert_eq!(
            key_action(NOW, false, Some(NOW - 10), Some(NOW - 29)),
            RejectUnknownKid
        );
        assert_eq!(
            key_action(NOW, false, Some(NOW - 10), Some(NOW - 30)),
            Refresh
        );
        // A known kid in an expired set refreshes even right after a miss.
        assert_eq!(
            key_action(NOW, true, Some(NOW - 4000), Some(NOW - 1)),
            Refresh
        );
        assert_eq!(key_action(NOW, false, None, None), Refresh);
        assert_eq!(key_action(NOW, true, Some(NOW), None), UseCached);
        // Stale keys verify for up to 24 h when the refresh fails.
        assert!(after_failed_refresh(NOW, true, Some(NOW - 86_400)));
        assert!(!after_failed_refresh(NOW, true, Some(NOW - 86_401)));
        assert!(!after_failed_refresh(NOW, false, Some(NOW)));
        assert!(!after_failed_refresh(NOW, true, None));
        let set = parse_jwks(
            json!({"keys":[key_json("k1", 2048)]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(after_refresh(&set, "k1").is_ok());
        assert_eq!(after_refresh(&set, "k2").unwrap_err().code(), "unknown_kid");
    }
}
