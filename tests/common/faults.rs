//! A server on 127.0.0.1 that fails the way real servers and the networks in front of them
//! do: it hangs, drips, cuts answers short, answers huge bodies, rate-limits, redirects
//! elsewhere, or answers an error; optionally only for the first requests, forwarding the
//! rest to a working server. std only, one thread per connection; it records the head of
//! every request it was sent.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Fault {
    /// An answer as given: status, content type, extra headers, body.
    Answer { status: u16, content_type: &'static str, headers: Vec<(&'static str, String)>, body: String },
    /// Accepts the connection, reads the request, never answers.
    Hang,
    /// Sends the status line and headers of a JSON answer, then one byte every 100 ms.
    Drip,
    /// Promises 1,000 bytes and sends 10, then closes the connection.
    Truncated,
    /// A body of `MiB` mebibytes of JSON-looking bytes: with its `Content-Length`, or chunked
    /// without one (the size is then learnt only by reading it).
    Huge { mib: usize, announced: bool },
    /// `401` whose body repeats the request's headers on its first line, as some proxies
    /// do: whatever obsctl prints of it must not carry the credentials.
    Echo,
    /// `302 Found` to `location`.
    Redirect { location: String },
    /// The fault of the first path prefix the request's path starts with, else `other`.
    ByPath { paths: Vec<(&'static str, Fault)>, other: Box<Fault> },
    /// `first` for the first `n` requests, then every request forwarded to `upstream`.
    Then { first: Box<Fault>, n: usize, upstream: SocketAddr },
}

impl Fault {
    pub fn status(status: u16, content_type: &'static str, body: &str) -> Fault {
        Fault::Answer { status, content_type, headers: Vec::new(), body: body.to_string() }
    }

    pub fn json(status: u16, body: &str) -> Fault {
        Fault::status(status, "application/json", body)
    }

    pub fn rate_limited(retry_after: &str) -> Fault {
        Fault::Answer {
            status: 429,
            content_type: "text/plain",
            headers: vec![("Retry-After", retry_after.to_string())],
            body: "too many requests\n".into(),
        }
    }
}

pub struct FaultServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FaultServer {
    pub fn start(fault: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let seen = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (fault, log, seen) = (fault.clone(), log.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &fault, &log, &seen));
            }
        });
        FaultServer { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads received so far (request line and headers).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// A port nothing listens on: bound, then released.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

/// Answers every request on one connection (keep-alive) until the client closes it.
fn serve(stream: TcpStream, fault: &Fault, log: &Mutex<Vec<String>>, seen: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    while let Some(head) = read_head(&mut reader) {
        if let Ok(mut l) = log.lock() {
            l.push(head.clone());
        }
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let mut fault = fault;
        if let Fault::ByPath { paths, other } = fault {
            let path = head.split_whitespace().nth(1).unwrap_or("");
            fault = paths.iter().find(|(prefix, _)| path.starts_with(prefix)).map_or(&**other, |(_, f)| f);
        }
        if let Fault::Then { first, n: until, upstream } = fault {
            if n >= *until {
                forward(&head, *upstream, &mut out);
                return;
            }
            fault = first;
        }
        if let Fault::Echo = fault {
            let echoed = format!("you sent: {}\n{head}", head.lines().skip(1).collect::<Vec<_>>().join(", "));
            if !answer(&Fault::status(401, "text/plain", &echoed), &mut out) {
                return;
            }
            continue;
        }
        if !answer(fault, &mut out) {
            return;
        }
    }
}

/// Writes the fault; false when the connection is to be closed (or left hanging).
fn answer(fault: &Fault, out: &mut TcpStream) -> bool {
    match fault {
        Fault::Answer { status, content_type, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
                reason(*status),
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(body.as_bytes())).is_ok()
        }
        Fault::Hang => {
            std::thread::sleep(Duration::from_secs(3600));
            false
        }
        Fault::Drip => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
            if out.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for _ in 0..100_000 {
                std::thread::sleep(Duration::from_millis(100));
                if out.write_all(b" ").and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            false
        }
        Fault::Truncated => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
            let _ = out.write_all(head.as_bytes()).and_then(|_| out.write_all(br#"{"status":"#));
            let _ = out.shutdown(std::net::Shutdown::Both);
            false
        }
        Fault::Huge { mib, announced } => {
            let len = mib << 20;
            let head = if *announced {
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".into()
            };
            if out.write_all(head.as_bytes()).is_err() {
                return false;
            }
            let block = vec![b' '; 1 << 16];
            for _ in 0..len / block.len() {
                let sent = if *announced {
                    out.write_all(&block)
                } else {
                    out.write_all(format!("{:x}\r\n", block.len()).as_bytes())
                        .and_then(|_| out.write_all(&block))
                        .and_then(|_| out.write_all(b"\r\n"))
                };
                if sent.is_err() {
                    return false;
                }
            }
            if !announced {
                let _ = out.write_all(b"0\r\n\r\n");
            }
            false
        }
        Fault::Redirect { location } => {
            let head =
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = out.write_all(head.as_bytes());
            false
        }
        Fault::Then { first, .. } => answer(first, out),
        Fault::Echo | Fault::ByPath { .. } => unreachable!("answered in serve, which has the request"),
    }
}

/// Sends the request to `upstream` on a connection of its own and copies the answer back,
/// then closes: the upstream answers `Connection: close`.
fn forward(head: &str, upstream: SocketAddr, out: &mut TcpStream) {
    let Ok(mut up) = TcpStream::connect(upstream) else { return };
    let mut lines: Vec<&str> = head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    lines.push("Connection: close");
    let request = lines.join("\r\n") + "\r\n\r\n";
    if up.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    let _ = out.write_all(&answer);
}

/// The request line and headers (GET requests only: no body is read).
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            return (!head.is_empty()).then_some(head);
        }
        head.push_str(line.trim_end_matches(['\r', '\n']));
        head.push('\n');
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
