//! GitHub App private keys: PEM in, PKCS#8 DER out.
//!
//! GitHub hands out App keys as PKCS#1 (`BEGIN RSA PRIVATE KEY`), some admins convert
//! them to PKCS#8 (`BEGIN PRIVATE KEY`), and Web Crypto's `importKey` only accepts PKCS#8.
//!
//! **Invariant:** an [`RsaPrivateKey`] only exists for an unencrypted, two-prime RSA key
//! of at least [`MIN_MODULUS_BITS`] whose DER is strict and free of trailing bytes, and
//! its [`pkcs8_der`](RsaPrivateKey::pkcs8_der) is the canonical wrapping of the inner
//! PKCS#1 structure, so both input forms of one key yield byte-identical output.
//! Key material never reaches `Debug`, `Display` or an error message.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Below this, GitHub refuses the key anyway and Web Crypto's guarantees are weak.
pub const MIN_MODULUS_BITS: usize = 2048;

/// Web Crypto implementations stop at 16384 bits; larger means garbage, not a real key.
const MAX_MODULUS_BITS: usize = 16384;

/// A 16384-bit PKCS#8 PEM is about 13 KB; anything far above is not a key, and the cap
/// keeps hostile configuration from costing more than a quick rejection.
const MAX_PEM_LEN: usize = 64 * 1024;

/// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption), content octets only.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// Why a configured private key was refused. Messages name the problem, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum PemError {
    /// No `-----BEGIN …-----` / `-----END …-----` block could be found.
    #[error("private key is not PEM: {0}")]
    NotPem(Cow<'static, str>),
    /// A PEM block of a kind ghplane cannot use (EC, encrypted, public key, …).
    #[error(
        "unsupported private key ({0}); expected an unencrypted RSA key as PKCS#1 \
         (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`)"
    )]
    Unsupported(String),
    /// The PEM body is not valid base64.
    #[error("private key PEM body is not valid base64")]
    BadBase64,
    /// The DER inside the PEM does not have the expected structure.
    #[error("private key DER is malformed: {0}")]
    Malformed(Cow<'static, str>),
    /// A PKCS#8 key for another algorithm.
    #[error("private key is not an RSA key (algorithm {0})")]
    NotRsa(String),
    /// An RSA key shorter than [`MIN_MODULUS_BITS`].
    #[error("RSA private key has {bits} bits; at least {MIN_MODULUS_BITS} are required")]
    TooSmall { bits: usize },
}

impl PemError {
    /// Every code, for the OpenAPI document (answered with 400 when a key is stored).
    pub const ALL_CODES: &'static [&'static str] = &[
        "private_key_not_pem",
        "private_key_unsupported",
        "private_key_bad_base64",
        "private_key_malformed",
        "private_key_not_rsa",
        "private_key_too_small",
    ];

    /// Stable machine-readable code, for API responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PemError::NotPem(_) => "private_key_not_pem",
            PemError::Unsupported(_) => "private_key_unsupported",
            PemError::BadBase64 => "private_key_bad_base64",
            PemError::Malformed(_) => "private_key_malformed",
            PemError::NotRsa(_) => "private_key_not_rsa",
            PemError::TooSmall { .. } => "private_key_too_small",
        }
    }
}

/// A validated RSA private key, held as PKCS#8 DER ready for Web Crypto.
#[derive(Clone)]
pub struct RsaPrivateKey {
    pkcs8_der: Vec<u8>,
    modulus_bits: usize,
    spki_der: Vec<u8>,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only public facts: enough to tell keys apart in logs, nothing to leak.
        f.debug_struct("RsaPrivateKey")
            .field("modulus_bits", &self.modulus_bits)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl RsaPrivateKey {
    /// Parses a PKCS#1 or PKCS#8 PEM, as pasted into a secret by a human or a tool.
    pub fn from_pem(pem: &str) -> Result<Self, PemError> {
        if pem.len() > MAX_PEM_LEN {
            return Err(PemError::NotPem(
                "input is far larger than any RSA key".into(),
            ));
        }
        let normalized = normalize(pem);
        let block = find_block(&normalized)?;
        match block.label {
            "RSA PRIVATE KEY" => {
                if block.has_headers {
                    // RFC 1421 `Proc-Type: 4,ENCRYPTED` / `DEK-Info` legacy encryption.
                    return Err(PemError::Unsupported("encrypted `RSA PRIVATE KEY`".into()));
                }
                let der = decode_body(block.body)?;
                Self::from_pkcs1_der(&der)
            }
            "PRIVATE KEY" => {
                if block.has_headers {
                    return Err(PemError::Malformed(
                        "PKCS#8 PEM must not have headers".into(),
                    ));
                }
                let der = decode_body(block.body)?;
                Self::from_pkcs8_der(&der)
            }
            other => Err(PemError::Unsupported(format!("PEM block `{other}`"))),
        }
    }

    /// PrivateKeyInfo DER (RFC 5208), as `crypto.subtle.importKey("pkcs8", …)` wants it.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// Size of the modulus n in bits (2048 for keys GitHub generates).
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// SubjectPublicKeyInfo DER of the matching public key.
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `SHA256:<base64 without padding>` of the public key's SubjectPublicKeyInfo DER,
    /// the fingerprint GitHub shows next to an App's private keys, so admins can tell
    /// which of them is configured.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.spki_der);
        format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, PemError> {
        let mut outer = Der::new(der);
        let mut info = outer.sequence()?;
        outer.finish()?;

        let version = info.integer()?;
        // v2 (OneAsymmetricKey, RFC 5958) only adds an optional public key; accept it.
        if version != [0] && version != [1] {
            return Err(PemError::Malformed("unknown PKCS#8 version".into()));
        }

        let mut algorithm = info.sequence()?;
        let oid = algorithm.expect(TAG_OID)?;
        if oid != RSA_ENCRYPTION_OID {
            return Err(PemError::NotRsa(describe_oid(oid)));
        }
        // rsaEncryption parameters are NULL by RFC 8017, but some encoders omit them.
        if !algorithm.is_empty() {
            let params = algorithm.expect(TAG_NULL)?;
            if !params.is_empty() {
                return Err(PemError::Malformed(
                    "rsaEncryption parameters must be NULL".into(),
                ));
            }
        }
        algorithm.finish()?;

        let pkcs1 = info.expect(TAG_OCTET_STRING)?;
        // Optional `[0] attributes` and `[1] publicKey` are dropped by re-wrapping below.
        while !info.is_empty() {
            let (tag, _) = info.any()?;
            if tag != 0xa0 && tag != 0x81 && tag != 0xa1 {
                return Err(PemError::Malformed(
                    "unexpected field in PrivateKeyInfo".into(),
                ));
            }
        }

        Self::from_pkcs1_der(pkcs1)
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<Self, PemError> {
        let mut outer = Der::new(der);
        let mut key = outer.sequence()?;
        outer.finish()?;

        let version = key.integer()?;
        if version == [1] {
            // Multi-prime keys exist in theory; Web Crypto does not import them.
            return Err(PemError::Unsupported("multi-prime RSA key".into()));
        }
        if version != [0] {
            return Err(PemError::Malformed("unknown RSAPrivateKey version".into()));
        }

        let n = key.positive_integer()?;
        let e = key.positive_integer()?;
        // d, p, q, dP, dQ, qInv: checked for shape only; Web Crypto checks the maths.
        for _ in 0..6 {
            key.positive_integer()?;
        }
        key.finish()?;

        let modulus_bits = bit_length(n);
        if modulus_bits < MIN_MODULUS_BITS {
            return Err(PemError::TooSmall { bits: modulus_bits });
        }
        if modulus_bits > MAX_MODULUS_BITS {
            return Err(PemError::Unsupported(format!("{modulus_bits}-bit RSA key")));
        }
        if e.last().is_some_and(|b| b & 1 == 0) || bit_length(e) < 2 {
            return Err(PemError::Malformed(
                "RSA public exponent must be odd and > 1".into(),
            ));
        }

        let spki_der = rsa_spki_der(n, e);
        let pkcs8_der = tlv(
            TAG_SEQUENCE,
            &[
                tlv(TAG_INTEGER, &[0]),
                rsa_algorithm_identifier(),
                tlv(TAG_OCTET_STRING, der),
            ]
            .concat(),
        );
        Ok(Self {
            pkcs8_der,
            modulus_bits,
            spki_der,
        })
    }
}

/// Undoes what env-var tooling does to multi-line secrets: literal `\n`, CRLF, quotes.
fn normalize(pem: &str) -> String {
    let mut s = pem.trim();
    // `KEY="-----BEGIN…"` copied with its quotes.
    for quote in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(quote) && s.ends_with(quote) {
            s = s[1..s.len() - 1].trim();
        }
    }
    s.replace("\\r", "").replace("\\n", "\n").replace('\r', "")
}

struct PemBlock<'a> {
    label: &'a str,
    body: &'a str,
    has_headers: bool,
}

/// Finds the first PEM block; text around it is explanatory text (RFC 7468 §2).
fn find_block(s: &str) -> Result<PemBlock<'_>, PemError> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";

    let start = s
        .find(BEGIN)
        .ok_or(PemError::NotPem("no `-----BEGIN` line".into()))?;
    let after_begin = &s[start + BEGIN.len()..];
    let label_end = after_begin
        .find(DASHES)
        .ok_or(PemError::NotPem("unterminated `-----BEGIN` line".into()))?;
    let label = &after_begin[..label_end];
    // Labels are short upper-case words; anything else means we are looking at junk,
    // which must not be echoed back in an error message.
    if label.is_empty()
        || label.len() > 40
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
    {
        return Err(PemError::NotPem("invalid `-----BEGIN` label".into()));
    }
    let rest = &after_begin[label_end + DASHES.len()..];
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker).ok_or(PemError::NotPem(
        "no `-----END` line matching the `-----BEGIN` line".into(),
    ))?;
    let body = &rest[..body_end];
    Ok(PemBlock {
        label,
        body,
        has_headers: body.contains(':'),
    })
}

fn decode_body(body: &str) -> Result<Vec<u8>, PemError> {
    // Whitespace anywhere is fine: some tools fold newlines into spaces.
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(PemError::Malformed("empty PEM body".into()));
    }
    STANDARD.decode(compact).map_err(|_| PemError::BadBase64)
}

/// Number of significant bits in a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
    }
}

fn rsa_algorithm_identifier() -> Vec<u8> {
    tlv(
        TAG_SEQUENCE,
        &[tlv(TAG_OID, RSA_ENCRYPTION_OID), tlv(TAG_NULL, &[])].concat(),
    )
}

/// `n` and `e` are INTEGER contents exactly as read, hence already minimal DER.
fn rsa_spki_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_public_key = tlv(
        TAG_SEQUENCE,
        &[tlv(TAG_INTEGER, n), tlv(TAG_INTEGER, e)].concat(),
    );
    // BIT STRING content starts with the count of unused bits: none.
    let bit_string = tlv(TAG_BIT_STRING, &[&[0u8][..], &rsa_public_key].concat());
    tlv(
        TAG_SEQUENCE,
        &[rsa_algorithm_identifier(), bit_string].concat(),
    )
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let len_bytes = len.to_be_bytes();
        let skip = len_bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (len_bytes.len() - skip) as u8);
        out.extend_from_slice(&len_bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Dotted form of an OID, for error messages; bounded and lossy on garbage.
fn describe_oid(oid: &[u8]) -> String {
    let name = match oid {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => Some("EC"),
        [0x2b, 0x65, 0x70] => Some("Ed25519"),
        [0x2b, 0x65, 0x71] => Some("Ed448"),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a] => Some("RSASSA-PSS"),
        _ => None,
    };
    if let Some(name) = name {
        return name.to_string();
    }
    if oid.is_empty() || oid.len() > 32 {
        return "unrecognized OID".to_string();
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        if acc > (u64::MAX >> 7) {
            return "unrecognized OID".to_string();
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    if oid.last().is_some_and(|b| b & 0x80 != 0) {
        return "unrecognized OID".to_string();
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("OID {a}.{b}");
    for arc in &arcs[1..] {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    out
}

/// Just enough strict-DER reading for the two key structures: single-byte tags,
/// definite minimal lengths, no reads past the end.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn finish(self) -> Result<(), PemError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PemError::Malformed(
                "trailing bytes after DER structure".into(),
            ))
        }
    }

    fn any(&mut self) -> Result<(u8, &'a [u8]), PemError> {
        let (&tag, rest) = self
            .rest
            .split_first()
            .ok_or(PemError::Malformed("truncated DER".into()))?;
        if tag & 0x1f == 0x1f {
            return Err(PemError::Malformed("unexpected multi-byte DER tag".into()));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or(PemError::Malformed("truncated DER".into()))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(PemError::Malformed("indefinite DER length".into()));
            }
            if count > 4 {
                return Err(PemError::Malformed("DER length too large".into()));
            }
            if rest.len() < count {
                return Err(PemError::Malformed("truncated DER".into()));
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            if len_bytes[0] == 0 {
                return Err(PemError::Malformed("non-minimal DER length".into()));
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(PemError::Malformed("non-minimal DER length".into()));
            }
            len
        };
        if rest.len() < len {
            return Err(PemError::Malformed("truncated DER".into()));
        }
        let (content, after) = rest.split_at(len);
        self.rest = after;
        Ok((tag, content))
    }

    fn expect(&mut self, tag: u8) -> Result<&'a [u8], PemError> {
        let (found, content) = self.any()?;
        if found != tag {
            return Err(PemError::Malformed("unexpected DER tag".into()));
        }
        Ok(content)
    }

    fn sequence(&mut self) -> Result<Der<'a>, PemError> {
        self.expect(TAG_SEQUENCE).map(Der::new)
    }

    /// INTEGER contents, checked to be minimally encoded.
    fn integer(&mut self) -> Result<&'a [u8], PemError> {
        let content = self.expect(TAG_INTEGER)?;
        match content {
            [] => Err(PemError::Malformed("empty DER INTEGER".into())),
            [0x00, next, ..] if next & 0x80 == 0 => {
                Err(PemError::Malformed("non-minimal DER INTEGER".into()))
            }
            [0xff, next, ..] if next & 0x80 != 0 => {
                Err(PemError::Malformed("non-minimal DER INTEGER".into()))
            }
            _ => Ok(content),
        }
    }

    fn positive_integer(&mut self) -> Result<&'a [u8], PemError> {
        let content = self.integer()?;
        if content[0] & 0x80 != 0 || bit_length(content) == 0 {
            return Err(PemError::Malformed(
                "RSA key component is not positive".into(),
            ));
        }
        Ok(content)
    }
}

#[cfg(test)]
pub(crate) fn samples() -> Vec<PemError> {
    vec![
        PemError::NotPem("no `-----BEGIN` line".into()),
        PemError::Unsupported("EC".into()),
        PemError::BadBase64,
        PemError::Malformed("truncated DER".into()),
        PemError::NotRsa("1.2.840.10045.2.1".into()),
        PemError::TooSmall { bits: 1024 },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS1_2048: &str = include_str!("../tests/fixtures/test-rsa-2048-pkcs1.pem");
    const PKCS8_2048: &str = include_str!("../tests/fixtures/test-rsa-2048-pkcs8.pem");
    const SPKI_2048: &[u8] = include_bytes!("../tests/fixtures/test-rsa-2048-spki.der");
    const PKCS1_1024: &str = include_str!("../tests/fixtures/test-rsa-1024-pkcs1.pem");
    const EC_SEC1: &str = include_str!("../tests/fixtures/test-ec-p256.pem");
    const EC_PKCS8: &str = include_str!("../tests/fixtures/test-ec-p256-pkcs8.pem");

    /// Computed once with:
    /// `openssl rsa -in crates/core/tests/fixtures/test-rsa-2048-pkcs1.pem -pubout -outform DER | openssl dgst -sha256 -binary | base64`
    /// (openssl's output ends in `=` padding, which GitHub's display and ours omit).
    const FINGERPRINT_2048: &str = "SHA256:5FbVgQ0d5bf+xzUnTTgHuw/sE5w9qop0nrurNnTsp9E";

    fn pem_body_der(pem: &str) -> Vec<u8> {
        let block = find_block(pem).unwrap();
        decode_body(block.body).unwrap()
    }

    fn to_pem(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn pkcs1_and_pkcs8_of_one_key_agree() {
        let a = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
        let b = RsaPrivateKey::from_pem(PKCS8_2048).unwrap();
        assert_eq!(a.pkcs8_der(), b.pkcs8_der());
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.modulus_bits(), 2048);
        assert_eq!(b.modulus_bits(), 2048);
    }

    #[test]
    fn pkcs8_der_matches_openssl_topk8() {
        // `openssl pkcs8 -topk8 -nocrypt` emits exactly the canonical wrapping.
        let a = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
        assert_eq!(a.pkcs8_der(), pem_body_der(PKCS8_2048).as_slice());
    }

    #[test]
    fn public_key_matches_openssl() {
        let key = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
        assert_eq!(key.public_key_spki_der(), SPKI_2048);
        assert_eq!(key.fingerprint(), FINGERPRINT_2048);
    }

    #[test]
    fn debug_is_redacted() {
        let key = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("2048"));
        assert!(dbg.contains(FINGERPRINT_2048));
        let body: String = PKCS1_2048
            .lines()
            .nth(1)
            .unwrap()
            .chars()
            .take(16)
            .collect();
        assert!(!dbg.contains(&body));
        let der_prefix = STANDARD.encode(&key.pkcs8_der()[..12]);
        assert!(!dbg.contains(&der_prefix));
        assert!(dbg.len() < 200);
    }

    #[test]
    fn tolerates_env_var_mangling() {
        let want = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
        let variants = [
            PKCS1_2048.replace('\n', "\r\n"),
            format!("  \n\t{PKCS1_2048}\n\n  "),
            PKCS1_2048.trim().replace('\n', "\\n"),
            PKCS1_2048.trim().replace('\n', "\\r\\n"),
            format!("\"{}\"", PKCS1_2048.trim().replace('\n', "\\n")),
            format!("'{}'", PKCS1_2048.trim()),
            PKCS1_2048.replace('\n', " "),
            format!("Key for the staging app:\n{PKCS1_2048}"),
            // Unwrapped base64, as some secret stores emit.
            {
                let mut lines = PKCS1_2048.trim().lines();
                let begin = lines.next().unwrap();
                let all: Vec<&str> = lines.collect();
                let (body, end) = all.split_at(all.len() - 1);
                format!("{begin}\n{}\n{}", body.concat(), end[0])
            },
        ];
        for (i, v) in variants.iter().enumerate() {
            let got = RsaPrivateKey::from_pem(v).unwrap_or_else(|e| panic!("variant {i}: {e}"));
            assert_eq!(got.pkcs8_der(), want.pkcs8_der(), "variant {i}");
        }
    }

    #[test]
    fn too_small_key_is_refused() {
        let err = RsaPrivateKey::from_pem(PKCS1_1024).unwrap_err();
        assert_eq!(err, PemError::TooSmall { bits: 1024 });
        assert_eq!(err.code(), "private_key_too_small");
    }

    #[test]
    fn unsupported_labels() {
        for (pem, code) in [
            (EC_SEC1.to_string(), "private_key_unsupported"),
            (
                to_pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x00]),
                "private_key_unsupported",
            ),
            (to_pem("PUBLIC KEY", SPKI_2048), "private_key_unsupported"),
            (
                to_pem("CERTIFICATE", &[0x30, 0x00]),
                "private_key_unsupported",
            ),
        ] {
            let err = RsaPrivateKey::from_pem(&pem).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        }
        let err = RsaPrivateKey::from_pem(EC_SEC1).unwrap_err();
        assert!(err.to_string().contains("EC PRIVATE KEY"), "{err}");
    }

    #[test]
    fn legacy_encrypted_pkcs1_is_unsupported() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                   DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n\
                   -----END RSA PRIVATE KEY-----\n";
        let err = RsaPrivateKey::from_pem(pem).unwrap_err();
        assert_eq!(err.code(), "private_key_unsupported");
    }

    #[test]
    fn pkcs8_of_another_algorithm_is_not_rsa() {
        let err = RsaPrivateKey::from_pem(EC_PKCS8).unwrap_err();
        assert_eq!(err, PemError::NotRsa("EC".into()));
        assert_eq!(err.code(), "private_key_not_rsa");
    }

    #[test]
    fn describes_unknown_oids() {
        assert_eq!(
            describe_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
            "OID 1.2.840.113549.1.1.1"
        );
        assert_eq!(describe_oid(&[0x80]), "unrecognized OID");
        assert_eq!(describe_oid(&[0xff; 40]), "unrecognized OID");
    }

    #[test]
    fn not_pem() {
        for input in [
            String::new(),
            "   \n".to_string(),
            "hello".to_string(),
            "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n".to_string(),
            "-----BEGIN RSA PRIVATE KEY".to_string(),
            "-----BEGIN rsa private key-----\nAAAA\n-----END rsa private key-----".to_string(),
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".to_string(),
            "x".repeat(1 << 20),
            format!("-----BEGIN RSA PRIVATE KEY-----\n{}", "A".repeat(1 << 20)),
        ] {
            let err = RsaPrivateKey::from_pem(&input).unwrap_err();
            assert_eq!(err.code(), "private_key_not_pem", "{err}");
        }
    }

    #[test]
    fn error_messages_do_not_echo_input() {
        let secret = "-----BEGIN SUPERSECRETMATERIAL1234567890ABCDEFGHIJKLMNOP-----\nAAAA\n";
        let err = RsaPrivateKey::from_pem(secret).unwrap_err();
        assert!(!err.to_string().contains("SUPERSECRET"), "{err}");
    }

    #[test]
    fn bad_base64() {
        for body in ["MIIB$$$$", "MIIBAAA", "MII=BAAA", "====", "TQ"] {
            let pem =
                format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----");
            let err = RsaPrivateKey::from_pem(&pem).unwrap_err();
            assert_eq!(err, PemError::BadBase64, "{body}");
            assert_eq!(err.code(), "private_key_bad_base64");
        }
        let mut bad = PKCS1_2048.to_string();
        let i = bad.find("\n").unwrap() + 10;
        bad.replace_range(i..i + 1, "!");
        assert_eq!(
            RsaPrivateKey::from_pem(&bad).unwrap_err(),
            PemError::BadBase64
        );
    }

    #[test]
    fn empty_body_is_malformed() {
        let pem = "-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----";
        assert_eq!(
            RsaPrivateKey::from_pem(pem).unwrap_err().code(),
            "private_key_malformed"
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for (label, der) in [
            ("RSA PRIVATE KEY", pem_body_der(PKCS1_2048)),
            ("PRIVATE KEY", pem_body_der(PKCS8_2048)),
        ] {
            for len in 0..der.len() {
                let err = RsaPrivateKey::from_pem(&to_pem(label, &der[..len])).unwrap_err();
                assert_eq!(err.code(), "private_key_malformed", "{label} cut at {len}");
            }
        }
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        for (label, pem) in [("RSA PRIVATE KEY", PKCS1_2048), ("PRIVATE KEY", PKCS8_2048)] {
            let mut der = pem_body_der(pem);
            der.push(0);
            let err = RsaPrivateKey::from_pem(&to_pem(label, &der)).unwrap_err();
            assert_eq!(
                err,
                PemError::Malformed("trailing bytes after DER structure".into())
            );
        }
    }

    #[test]
    fn swapped_labels_are_malformed() {
        let err =
            RsaPrivateKey::from_pem(&to_pem("PRIVATE KEY", &pem_body_der(PKCS1_2048))).unwrap_err();
        assert_eq!(err.code(), "private_key_malformed");
        let err = RsaPrivateKey::from_pem(&to_pem("RSA PRIVATE KEY", &pem_body_der(PKCS8_2048)))
            .unwrap_err();
        assert_eq!(err.code(), "private_key_malformed");
    }

    #[test]
    fn single_byte_corruption_is_refused_or_is_another_key() {
        let der = pem_body_der(PKCS1_2048);
        let original = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
        // `30 82 04 a3` (the key), `02 01 00` (version 0), `02 82 01 01` (the modulus): the
        // first 11 bytes are tags and lengths, and every change there is refused. From byte
        // 11 on the bytes are the modulus itself: the parser checks structure, not the
        // arithmetic (Web Crypto's import does), so a change there reads as another key,
        // never as the original one. Every mutation is handled without a panic.
        assert_eq!(&der[..11], [0x30, 0x82, 0x04, 0xa3, 2, 1, 0, 2, 0x82, 1, 1]);
        for i in 0..40.min(der.len()) {
            for v in [0x00, 0x01, 0x02, 0x30, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xff] {
                if v == der[i] {
                    continue;
                }
                let mut d = der.clone();
                d[i] = v;
                match RsaPrivateKey::from_pem(&to_pem("RSA PRIVATE KEY", &d)) {
                    Err(_) => {}
                    Ok(key) => {
                        assert!(i >= 11, "structure byte {i} set to {v:#04x} still parsed");
                        assert_ne!(
                            key.public_key_spki_der(),
                            original.public_key_spki_der(),
                            "modulus byte {i} set to {v:#04x} parsed as the original key"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn der_reader_rejects_non_der() {
        assert!(Der::new(&[0x30, 0x80, 0x00, 0x00]).any().is_err());
        assert!(Der::new(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).any().is_err());
        assert!(Der::new(&[0x30, 0x82, 0x00, 0x80]).any().is_err());
        assert!(Der::new(&[0x30, 0x85, 1, 0, 0, 0, 0]).any().is_err());
        assert!(Der::new(&[0x1f, 0x01, 0x00]).any().is_err());
        assert!(Der::new(&[0x02, 0x02, 0x00, 0x01]).integer().is_err());
        assert!(Der::new(&[0x02, 0x02, 0xff, 0x80]).integer().is_err());
        assert!(Der::new(&[0x02, 0x00]).integer().is_err());
        assert!(Der::new(&[0x02, 0x01, 0x80]).positive_integer().is_err());
        assert!(Der::new(&[0x02, 0x01, 0x00]).positive_integer().is_err());
        assert_eq!(
            Der::new(&[0x02, 0x02, 0x00, 0x80]).positive_integer(),
            Ok(&[0x00, 0x80][..])
        );
    }

    #[test]
    fn tlv_encodes_long_lengths() {
        assert_eq!(tlv(0x04, &[]), vec![0x04, 0x00]);
        assert_eq!(&tlv(0x04, &[0; 0x7f])[..2], &[0x04, 0x7f]);
        assert_eq!(&tlv(0x04, &[0; 0x80])[..3], &[0x04, 0x81, 0x80]);
        assert_eq!(&tlv(0x04, &[0; 0x100])[..4], &[0x04, 0x82, 0x01, 0x00]);
        let big = tlv(0x04, &[0; 0x1_0000]);
        assert_eq!(Der::new(&big).any().unwrap().1.len(), 0x1_0000);
    }
}
