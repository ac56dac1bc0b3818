//! A local Lambda Runtime API (the `2018-06-01` interface a function's
//! runtime client polls), for running the real function binaries on this
//! machine: the init benchmark times a start to the first `GET .../next`,
//! and the functions' tests start them, hand them events and read what
//! they answer. Blocking std networking; not for production.
//!
//! `GET .../invocation/next` answers the next queued event, or holds the
//! connection while none is queued, as Lambda does between invocations.
//! Every request is noted; `POST .../response`, `.../error` and
//! `.../init/error` are kept with their bodies.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// One request the function made.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    /// `GET /2018-06-01/runtime/invocation/next HTTP/1.1`, say.
    pub line: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    queued: VecDeque<(String, Vec<u8>)>,
    calls: Vec<Call>,
    pushed: u64,
}

/// The server; it runs until the process ends.
pub struct RuntimeApi {
    addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl RuntimeApi {
    /// Listens on 127.0.0.1 and a free port.
    pub fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Ok(RuntimeApi { addr, state })
    }

    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an invocation; returns its request id. A held `next` takes
    /// it — one of a process since killed, too: queue events only while one
    /// function runs against this server.
    pub fn push_event(&self, payload: impl Into<Vec<u8>>) -> String {
        let mut s = self.lock();
        s.pushed += 1;
        let id = format!("local-{}", s.pushed);
        s.queued.push_back((id.clone(), payload.into()));
        self.state.1.notify_all();
        id
    }

    /// Forgets every call (between two starts of a binary).
    pub fn clear(&self) {
        self.lock().calls.clear();
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// When the first `GET .../next` arrived: the end of init.
    pub fn first_next(&self) -> Option<Instant> {
        self.lock().calls.iter().find(|c| c.line.contains(NEXT)).map(|c| c.at)
    }

    /// Waits up to `timeout` for the function's `n`th `GET .../next` (after
    /// answering an event it polls again); returns how many arrived.
    pub fn polls(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            let seen = s.calls.iter().filter(|c| c.line.contains(NEXT)).count();
            let now = Instant::now();
            if seen >= n || now >= deadline {
                return seen;
            }
            s = self.state.1.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Whether the function reported an init error.
    pub fn init_error(&self) -> bool {
        self.lock().calls.iter().any(|c| c.line.contains("/runtime/init/error"))
    }

    /// The answer to invocation `id` — (`"response"` or `"error"`, body) —
    /// waiting up to `timeout` for it.
    pub fn answer(&self, id: &str, timeout: Duration) -> Option<(String, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        let prefix = format!("/2018-06-01/runtime/invocation/{id}/");
        let mut s = self.lock();
        loop {
            let found = s.calls.iter().find_map(|c| {
                let path = c.line.split(' ').nth(1)?;
                Some((path.strip_prefix(&prefix)?.to_owned(), c.body.clone()))
            });
            let now = Instant::now();
            if found.is_some() || now >= deadline {
                return found;
            }
            s = self.state.1.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// What a function binary did with one event ([`invoke_once`]).
#[derive(Debug)]
pub struct Invoked {
    /// `("response" | "error", body)`, if it answered within 30 s.
    pub answer: Option<(String, Vec<u8>)>,
    /// Its `GET .../next` calls: 2 when it went back for another event.
    pub polls: usize,
}

/// Starts `binary` with a local run's settings and `rules_dir` as its rules
/// layer, hands it `payload` and waits for its answer and its next poll;
/// then kills it.
pub fn invoke_once(binary: &Path, rules_dir: &Path, payload: impl Into<Vec<u8>>) -> std::io::Result<Invoked> {
    let api = RuntimeApi::start()?;
    let id = api.push_event(payload);
    let mut child = Command::new(binary)
        .env_clear()
        .envs(nudge_aws::settings::local_start_env(api.addr(), rules_dir))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let answer = api.answer(&id, Duration::from_secs(30));
    let polls = api.polls(2, Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    Ok(Invoked { answer, polls })
}

/// One connection: requests in turn (the runtime client keeps it alive).
fn serve(stream: TcpStream, state: &(Mutex<State>, Condvar)) {
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let at = Instant::now();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let line = line.trim().to_owned();
        let next = line.contains(NEXT);
        let (lock, ready) = state;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        s.calls.push(Call { at, line, body });
        ready.notify_all();
        let reply = if next {
            // Held until an event is queued, as between invocations.
            while s.queued.is_empty() {
                s = ready.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            let (id, payload) = s.queued.pop_front().unwrap_or_default();
            drop(s);
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(60);
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:local\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                deadline.as_millis(),
                payload.len()
            )
            .into_bytes();
            head.extend_from_slice(&payload);
            head
        } else {
            drop(s);
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".to_vec()
        };
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}
