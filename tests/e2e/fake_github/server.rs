//! The fake's HTTP/1.1 server on `std::net` (why not tiny_http: see the module's documentation):
//! one thread per keep-alive connection, requests answered in order, and a stop that closes
//! every open connection.

use super::*;

/// Open connections live under the same lock as the stop flag, so that no
/// connection can be accepted after `stop` has shut the others down.
#[derive(Default)]
pub(super) struct Lifecycle {
    pub(super) stopping: bool,
    pub(super) next_id: u64,
    pub(super) open: HashMap<u64, TcpStream>,
}

impl Shared {
    // A panicking test or handler must not hide every later assertion behind
    // a poisoned lock; the state itself is always left consistent.
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lifecycle(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `None` once stopping: the caller must drop the connection.
    pub(super) fn register(&self, stream: TcpStream) -> Option<u64> {
        let mut lifecycle = self.lifecycle();
        if lifecycle.stopping {
            return None;
        }
        let id = lifecycle.next_id;
        lifecycle.next_id += 1;
        lifecycle.open.insert(id, stream);
        Some(id)
    }

    pub(super) fn close(&self, id: u64) {
        if let Some(stream) = self.lifecycle().open.remove(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub(super) fn stop(&self) {
        let mut lifecycle = self.lifecycle();
        lifecycle.stopping = true;
        for stream in lifecycle.open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.stopping.notify_all();
    }

    /// The first pending hold that matches `request`, marked arrived and no longer pending.
    pub(super) fn take_hold(&self, request: &RecordedRequest) -> Option<Arc<HoldState>> {
        let mut state = self.state();
        let index = state.holds.iter().position(|h| (h.matcher)(request))?;
        let hold = state.holds.remove(index);
        drop(state);
        hold.flags().0 = true;
        hold.changed.notify_all();
        Some(hold)
    }

    /// Waits for the hold's release, checking for the fake's stop; false if it stopped.
    pub(super) fn wait_released(&self, hold: &HoldState) -> bool {
        loop {
            {
                let flags = hold.flags();
                let (flags, _) = hold
                    .changed
                    .wait_timeout_while(flags, Duration::from_millis(100), |f| !f.1)
                    .unwrap_or_else(PoisonError::into_inner);
                if flags.1 {
                    return true;
                }
            }
            if self.lifecycle().stopping {
                return false;
            }
        }
    }

    /// Sleeps for `delay` unless the fake stops first; false if it stopped.
    pub(super) fn pause(&self, delay: Duration) -> bool {
        let lifecycle = self.lifecycle();
        let (lifecycle, _) = self
            .stopping
            .wait_timeout_while(lifecycle, delay, |lifecycle| !lifecycle.stopping)
            .unwrap_or_else(PoisonError::into_inner);
        !lifecycle.stopping
    }
}
pub(super) fn accept_connections(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        // A failed accept concerns only that client; keep serving the rest.
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let Some(id) = shared.register(handle) else {
            break;
        };
        let shared = Arc::clone(shared);
        connections.retain(|connection| !connection.is_finished());
        connections.push(thread::spawn(move || {
            serve_connection(&shared, stream);
            shared.close(id);
        }));
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Serves requests on one keep-alive connection, one at a time (HTTP/1.1
/// answers in order); concurrency comes from one thread per connection.
pub(super) fn serve_connection(shared: &Shared, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let (request, keep_alive) = match read_request(&mut reader, &mut writer) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return,
            Err(error) => {
                // A client that hangs up mid-request is not a protocol error.
                if error.kind() == io::ErrorKind::InvalidData {
                    shared
                        .state()
                        .failures
                        .push(format!("malformed HTTP request: {error}"));
                    let reply = Reply::json(400, json!({ "message": error.to_string() }));
                    let _ = write_response(&mut writer, &reply, false, false);
                }
                return;
            }
        };
        let head_only = request.method == "HEAD";
        let hold = shared.take_hold(&request);
        let reply = shared.answer(request);
        if let Some(hold) = hold {
            if !shared.wait_released(&hold) {
                return;
            }
        }
        if reply.drop_connection || !shared.pause(reply.delay) {
            return;
        }
        if write_response(&mut writer, &reply, keep_alive, head_only).is_err() || !keep_alive {
            return;
        }
    }
}

// Bounds that no real request comes near; they only stop garbage from
// exhausting memory.
pub(super) const MAX_LINE: u64 = 64 * 1024;
pub(super) const MAX_HEADERS: usize = 200;
pub(super) const MAX_BODY: usize = 32 * 1024 * 1024;

/// `Ok(None)` when the client closed the connection between requests.
pub(super) fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<Option<(RecordedRequest, bool)>> {
    let request_line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            // RFC 9112 asks servers to ignore blank lines before a request.
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(invalid(format!("unsupported version in {request_line:?}")));
    }

    let mut headers = Vec::new();
    loop {
        let line =
            read_line(reader)?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(invalid("too many headers".into()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.to_ascii_lowercase())
    };

    let connection = find("connection").unwrap_or_default();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    if find("expect").as_deref() == Some("100-continue") {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if find("transfer-encoding").is_some_and(|coding| coding.contains("chunked")) {
        read_chunked(reader)?
    } else if let Some(length) = find("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        if length > MAX_BODY {
            return Err(invalid(format!("content-length {length} is too large")));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };

    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = RecordedRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
        operation: None,
    };
    Ok(Some((request, keep_alive)))
}

pub(super) fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = required_line(reader)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailer fields carry nothing GitHub reads; skip to the end.
            while !required_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body is too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !required_line(reader)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF".into()));
        }
    }
}

/// A line without its CRLF (or bare LF); `None` at end of stream.
pub(super) fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if read as u64 == MAX_LINE {
            invalid("line too long".into())
        } else {
            io::ErrorKind::UnexpectedEof.into()
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

pub(super) fn required_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    read_line(reader)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

pub(super) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

pub(super) fn write_response(
    writer: &mut TcpStream,
    reply: &Reply,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    // RFC 9110 forbids a body, and so a content-length, on these.
    let bodiless = matches!(reply.status, 100..=199 | 204 | 304);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        reply.status,
        reason_phrase(reply.status)
    );
    for (name, value) in &reply.headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|framing| name.eq_ignore_ascii_case(framing));
        if !framing {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !bodiless {
        head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
    }
    if !keep_alive {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !bodiless && !head_only {
        bytes.extend_from_slice(&reply.body);
    }
    writer.write_all(&bytes)?;
    writer.flush()
}

pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        599 => "Unmatched Request",
        _ => "Unknown",
    }
}
