//! `fail!`: an [`fail!()`](ghplane_core::ApiError) that keeps where it happened and
//! what failed, for the one log line that carries it (the worker's `request` line in `lib.rs`, or
//! [`crate::http::error_response`] in an object).
//! Only failures whose text never quotes a request or a secret say more than their place.

use ghplane_core::error::Detail;

/// What a failure of the runtime may say about itself in a log line.
pub trait Described {
    fn described(&self) -> String;
}

impl Described for worker::Error {
    fn described(&self) -> String {
        match self {
            // A serde error's text can quote the value it refused.
            worker::Error::SerdeJsonError(e) => e.detail(),
            worker::Error::SerdeWasmBindgenError(_) => "serde-wasm-bindgen error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl Described for serde_json::Error {
    fn described(&self) -> String {
        self.detail()
    }
}

impl Described for worker::wasm_bindgen::JsValue {
    fn described(&self) -> String {
        worker::js_sys::Reflect::get(self, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .or_else(|| self.as_string())
            .unwrap_or_else(|| "a JavaScript exception".to_owned())
    }
}

impl Described for String {
    fn described(&self) -> String {
        self.clone()
    }
}

impl Described for &str {
    fn described(&self) -> String {
        (*self).to_owned()
    }
}

/// `fail!()` or `fail!(error)`: an internal error at this `file:line`.
macro_rules! fail {
    () => {
        $crate::fail::internal(concat!(file!(), ":", line!()), String::new())
    };
    ($e:expr) => {
        $crate::fail::internal(
            concat!(file!(), ":", line!()),
            $crate::fail::Described::described(&$e),
        )
    };
}

/// What `fail!` builds, out of line: 200-odd call sites share this one copy.
#[cold]
#[inline(never)]
pub fn internal(at: &'static str, detail: String) -> ghplane_core::ApiError {
    ghplane_core::ApiError::Internal(ghplane_core::error::Cause {
        at: at.to_owned(),
        detail,
    })
}

impl Described for ghplane_webcrypto::CryptoError {
    fn described(&self) -> String {
        // Names the operation and the runtime's reason; never a key or plaintext.
        format!("crypto: {self:?}")
    }
}

impl Described for ghplane_core::pem::PemError {
    fn described(&self) -> String {
        format!("private key: {}", self.code())
    }
}

impl Described for std::string::FromUtf8Error {
    fn described(&self) -> String {
        format!(
            "invalid UTF-8 after byte {}",
            self.utf8_error().valid_up_to()
        )
    }
}
