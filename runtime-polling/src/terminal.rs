//! The `chat` terminal client: one [`polling`] loop around a sans-IO
//! [`chat_core::client::Client`].
//!
//! The loop owns the socket, stdout and the clock; the [`Client`] makes every
//! protocol decision. stdin is read by a helper thread (epoll refuses regular
//! files and `/dev/null`, so the loop never polls stdin itself): each line, the
//! end of input and every SIGINT/SIGTERM go through one channel and wake the
//! loop with [`Poller::notify`].
//!
//! Invariants:
//! - The loop never blocks except in [`Poller::wait`], whose timeout is the
//!   client's [`poll_timeout`](Client::poll_timeout).
//! - Nothing reaches stdout but the lines of the contract (`<a> text`,
//!   `*a* text`, `-> *b* text`, `* ...`, `! ...`) and, only when stdin and
//!   stdout are both terminals, the line editor's `name: ` / `> ` prompts
//!   and its redrawing. Every byte that
//!   came from the server is passed through [`escape`]: no control character
//!   (not even TAB or LF) and no bidi override is ever written raw.
//! - User lines wait in a queue while a HELLO awaits its answer, so the line
//!   after a refused name is the next name even when stdin is piped; and
//!   they are acted on one at a time after the events already received are
//!   shown, so output follows the order of input.
//! - After our BYE the client core waits at most its quit linger (1 s) for
//!   the server's BYE or end of stream, then closes; the program exits 0
//!   either way.
//! - Exit status: 0 after the user left (`/quit`, `exit()`, end of input,
//!   Ctrl-C, idle exit); 1 when the server cannot be reached, goes away or
//!   breaks the protocol.
//!
//! On a terminal, lines are edited with rustyline (arrows, Home/End,
//! Ctrl-W/Ctrl-U, history with Up/Down) on its own thread, and incoming lines
//! are printed above the line being typed, which survives them. The
//! terminal's settings are restored on every way out.

#![allow(unsafe_code)] // polling::Poller::add is unsafe; see the SAFETY comment there.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufRead, ErrorKind, IsTerminal, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use chat_core::client::{Client, ClientConfig, ClientEvent, CloseReason};
use chat_core::{ErrorCode, Name, Reason, Text};
use polling::{Event as Interest, Events, PollMode, Poller};
use runtime_common::tls::{self, TlsSession};
use rustyline::ExternalPrinter;
use rustyline::error::ReadlineError;

/// Poller key of the socket.
const SOCKET: usize = 0;
/// Bytes read per readiness event.
const READ_CHUNK: usize = 64 * 1024;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the `chat` program was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server address, `HOST:PORT`.
    pub connect: String,
    /// Register as this name at once; `None` reads the name from stdin.
    pub name: Option<Name>,
    /// Leave after this long without user input; `None` never does.
    pub idle_exit: Option<Duration>,
    /// Speak TLS, verifying the server with these settings (see
    /// `runtime_common::tls::client_config`) against the host of `connect`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// What the stdin and signal threads hand to the loop.
#[derive(Debug)]
enum UserInput {
    Line(String),
    Eof,
    Interrupt,
}

/// A parsed user line.
#[derive(Debug, PartialEq, Eq)]
enum Command<'a> {
    Say(&'a str),
    Msg(&'a str, &'a str),
    Who,
    Help,
    Quit,
    /// A known command used wrongly: its usage.
    Usage(&'static str),
    Unknown(&'a str),
}

/// What `/help` prints, one `* ` line each.
const HELP: [&str; 5] = [
    "* a plain line says it to everyone",
    "* /msg NAME TEXT  whispers to NAME",
    "* /who            lists who is here",
    "* /help           shows this",
    "* /quit or exit() leaves (so do end of input and Ctrl-C)",
];

/// Runs the client until it ends; returns the process exit status.
pub fn run(options: Options) -> u8 {
    let stream = match runtime_common::connect(options.connect.as_str(), CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("chat: cannot connect to {}: {error}", options.connect);
            return 1;
        }
    };
    let tls = match &options.tls {
        None => None,
        Some(config) => {
            let session = tls::server_name_of(&options.connect)
                .and_then(|name| TlsSession::client(Arc::clone(config), name));
            match session {
                Ok(session) => Some(Box::new(session)),
                Err(error) => {
                    eprintln!("chat: cannot connect to {}: {error}", options.connect);
                    return 1;
                }
            }
        }
    };
    // A line editor puts the terminal in raw mode: whatever way the program
    // ends (the server going away, a panic on this thread), the terminal
    // gets its settings back.
    let _restore = TerminalRestore::capture();
    match Terminal::new(stream, tls, &options).and_then(|t| t.run(options.name)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("chat: {error}");
            1
        }
    }
}

/// The event loop's state.
struct Terminal {
    stream: TcpStream,
    /// TLS between the socket and the client core, with `--tls`.
    tls: Option<Box<TlsSession>>,
    /// Plaintext of the last TLS read.
    plain_buf: Vec<u8>,
    poller: Arc<Poller>,
    client: Client,
    inputs: Receiver<UserInput>,
    /// User lines (and the end of input, as `None`) not acted on yet.
    queue: VecDeque<Option<String>>,
    /// On a terminal (stdin and stdout both): lines are edited with
    /// rustyline on its own thread, and everything the loop prints goes
    /// above the line being typed. `None` when piped: plain lines, no
    /// prompt, no escape sequences.
    editor: Option<Editor>,
    /// Lines to show at the end of the turn.
    lines: RefCell<Vec<String>>,
    /// Whether the socket is registered for writability.
    writable: bool,
    /// The user asked to leave: a later server BYE is not a failure.
    user_quit: bool,
    /// The last whisper's recipient, to name it in `! no such user: bob`.
    last_whisper: Option<Name>,
    idle_exit: Option<Duration>,
    read_buf: Vec<u8>,
}

impl Terminal {
    fn new(stream: TcpStream, tls: Option<Box<TlsSession>>, options: &Options) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let poller = Arc::new(Poller::new()?);
        // SAFETY: the stream is owned by the returned `Terminal` and deleted
        // from the poller in `run` before it is dropped.
        unsafe { poller.add_with_mode(&stream, Interest::readable(SOCKET), PollMode::Level)? };
        let (sender, inputs) = mpsc::channel();
        // SIGINT and SIGTERM reach the loop as an interrupt, like Ctrl-C.
        let (signals, waker) = (sender.clone(), Arc::clone(&poller));
        runtime_common::cli::on_termination(Box::new(move || {
            if signals.send(UserInput::Interrupt).is_ok() {
                let _ = waker.notify();
            }
        }))?;
        let editor = if uses_editor() {
            Some(spawn_editor_thread(sender, Arc::clone(&poller))?)
        } else {
            spawn_stdin_thread(sender, Arc::clone(&poller))?;
            None
        };
        let config = ClientConfig {
            idle_exit: options.idle_exit,
            ..ClientConfig::default()
        };
        Ok(Self {
            stream,
            tls,
            plain_buf: Vec::new(),
            poller,
            client: Client::new(config, Instant::now()),
            inputs,
            queue: VecDeque::new(),
            editor,
            lines: RefCell::new(Vec::new()),
            writable: false,
            user_quit: false,
            last_whisper: None,
            idle_exit: options.idle_exit,
            read_buf: vec![0; READ_CHUNK],
        })
    }

    fn run(mut self, name: Option<Name>) -> io::Result<u8> {
        let now = Instant::now();
        match name {
            Some(name) => self.hello(now, name),
            None => self.prompt(),
        }
        let result = self.event_loop();
        if let Some(tls) = self.tls.as_deref_mut() {
            // close_notify, best effort: our end, not a cut.
            tls.close();
            let _ = self.stream.write(tls.transmit());
        }
        self.show_lines(true);
        let _ = self.poller.delete(&self.stream);
        result
    }

    fn event_loop(&mut self) -> io::Result<u8> {
        let mut events = Events::new();
        loop {
            if let Some(code) = self.drain_client()? {
                return Ok(code);
            }
            let now = Instant::now();
            let timeout = self
                .client
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now));
            crate::server::wait(&self.poller, &mut events, timeout)?;
            let now = Instant::now();
            for event in events.iter() {
                if event.readable {
                    self.read_socket(now)?;
                }
            }
            if let Some(code) = self.take_inputs(now) {
                return Ok(code);
            }
            self.client.handle_timeout(now);
        }
    }

    /// One read of the socket, fed to the client (through TLS). A TLS
    /// failure (a certificate that does not verify, a corrupt record) ends
    /// the program with its reason.
    fn read_socket(&mut self, now: Instant) -> io::Result<()> {
        let read = self.stream.read(&mut self.read_buf);
        let bytes = read.map(|n| self.read_buf.get(..n).unwrap_or_default());
        let tls = self.tls.as_deref_mut();
        tls::client_read(&mut self.client, tls, now, bytes, &mut self.plain_buf)
    }

    /// Writes what the client queued, shows its events and keeps the socket's
    /// interest up to date. `Some(code)` once the program should exit.
    fn drain_client(&mut self) -> io::Result<Option<u8>> {
        // Events first, then one user line, then its events: what is shown
        // follows the order of input and of the server's stream.
        loop {
            self.flush();
            while let Some(event) = self.client.poll_event() {
                if let Some(code) = self.show(event) {
                    self.show_lines(true);
                    return Ok(Some(code));
                }
            }
            if !self.process_next_line(Instant::now()) {
                break;
            }
        }
        self.show_lines(false);
        self.prompt();
        let writable = tls::client_has_outbound(&self.client, self.tls.as_deref());
        if writable != self.writable {
            let interest = Interest::new(SOCKET, true, writable);
            self.poller
                .modify_with_mode(&self.stream, interest, PollMode::Level)?;
            self.writable = writable;
        }
        Ok(None)
    }

    fn flush(&mut self) {
        loop {
            let pending = tls::client_outbound(&mut self.client, self.tls.as_deref_mut());
            if pending.is_empty() {
                return;
            }
            match self.stream.write(pending) {
                Ok(n) => tls::client_written(&mut self.client, self.tls.as_deref_mut(), n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("write failed: {e}");
                    self.client.handle_eof(Instant::now());
                    return;
                }
            }
        }
    }

    /// Moves everything the stdin and signal threads sent into the queue;
    /// a second interrupt ends the program at once. The lines are acted on
    /// in `drain_client`, after the events of what the server sent so far
    /// have been shown: output follows the order of input (a reply to an
    /// earlier line is never overtaken by a local error about a later one).
    fn take_inputs(&mut self, now: Instant) -> Option<u8> {
        while let Ok(input) = self.inputs.try_recv() {
            match input {
                UserInput::Line(line) => self.queue.push_back(Some(line)),
                UserInput::Eof => self.queue.push_back(None),
                UserInput::Interrupt if self.user_quit => return Some(0),
                UserInput::Interrupt => self.quit(now),
            }
        }
        None
    }

    /// Acts on the next queued line, unless a HELLO awaits its answer;
    /// returns whether it did.
    fn process_next_line(&mut self, now: Instant) -> bool {
        if self.client.is_hello_pending() || self.user_quit {
            return false;
        }
        match self.queue.pop_front() {
            Some(Some(line)) => self.on_line(now, &line),
            Some(None) => self.quit(now),
            None => return false,
        }
        true
    }

    fn on_line(&mut self, now: Instant, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return self.prompt();
        }
        let command = parse_command(line);
        if command == Command::Quit {
            return self.quit(now);
        }
        if self.client.name().is_none() {
            return self.on_name(now, line.trim());
        }
        match command {
            Command::Say(text) => self.say(now, text),
            Command::Msg(to, text) => self.whisper(now, to, text),
            Command::Who => {
                let _ = self.client.who(now);
            }
            // A line printed here brings its own prompt back.
            Command::Help => return HELP.iter().for_each(|line| self.print(line)),
            Command::Usage(usage) => return self.print(&format!("! usage: {usage}")),
            Command::Unknown(what) => {
                let what = escape(what);
                return self.print(&format!("! unknown command: {what} (try /help)"));
            }
            Command::Quit => {}
        }
        self.prompt();
    }

    fn on_name(&mut self, now: Instant, name: &str) {
        match Name::new(name) {
            Ok(name) => self.hello(now, name),
            Err(error) => {
                self.print(&format!("! name invalid: {error}"));
                self.prompt();
            }
        }
    }

    fn hello(&mut self, now: Instant, name: Name) {
        if let Err(error) = self.client.hello(now, name) {
            log::debug!("hello refused: {error}");
        }
    }

    fn say(&mut self, now: Instant, text: &str) {
        match Text::new(text) {
            Ok(text) => {
                let _ = self.client.say(now, text);
            }
            Err(error) => self.print(&format!("! not sent: {error}")),
        }
    }

    fn whisper(&mut self, now: Instant, to: &str, text: &str) {
        let to = match Name::new(to) {
            Ok(to) => to,
            Err(error) => return self.print(&format!("! not sent: {error}")),
        };
        match Text::new(text) {
            Ok(text) => {
                self.last_whisper = Some(to);
                let _ = self.client.whisper(now, to, text);
            }
            Err(error) => self.print(&format!("! not sent: {error}")),
        }
    }

    fn quit(&mut self, now: Instant) {
        self.user_quit = true;
        self.client.quit(now);
    }

    /// Shows one event; `Some(code)` when it ends the program.
    fn show(&mut self, event: ClientEvent) -> Option<u8> {
        match event {
            ClientEvent::Closed { reason } => return Some(self.show_close(reason)),
            ClientEvent::Error { code, detail } => {
                let line = describe_error(code, &detail, self.last_whisper);
                self.print(&line);
                if matches!(code, ErrorCode::NameTaken | ErrorCode::NameInvalid)
                    && self.client.name().is_none()
                {
                    self.prompt();
                }
            }
            ClientEvent::IdleExit => {
                let secs = self.idle_exit.map(|d| d.as_secs_f64()).unwrap_or_default();
                self.user_quit = true;
                self.print(&format!("* idle for {secs} s, leaving"));
            }
            other => {
                if let Some(line) = render(&other) {
                    self.print(&line);
                }
            }
        }
        None
    }

    fn show_close(&mut self, reason: CloseReason) -> u8 {
        match reason {
            CloseReason::Quit => 0,
            CloseReason::ServerBye { reason, detail } => {
                let mut line = format!("* server closed the connection ({}", reason.describe());
                if !detail.is_empty() {
                    let _ = write!(line, ": {}", escape(&detail));
                }
                line.push(')');
                self.print(&line);
                u8::from(!self.user_quit)
            }
            CloseReason::Disconnected => {
                self.print("! disconnected: the server closed the connection");
                u8::from(!self.user_quit)
            }
            CloseReason::ProtocolError(error) => {
                self.print(&format!(
                    "! protocol error from the server: {}",
                    escape(&error.to_string())
                ));
                1
            }
        }
    }

    /// Queues one line (already escaped) to be shown at the end of this
    /// turn ([`show_lines`](Self::show_lines)).
    fn print(&self, line: &str) {
        self.lines.borrow_mut().push(line.to_owned());
    }

    /// Shows the turn's lines: above the line being edited while the line
    /// editor reads, else straight to stdout, and always straight when the
    /// program is about to exit (the editor shows what it is handed a moment
    /// later, on its own thread, which an exiting program would not wait for).
    fn show_lines(&self, exiting: bool) {
        let lines = std::mem::take(&mut *self.lines.borrow_mut());
        if lines.is_empty() {
            return;
        }
        let mut rest = lines.as_slice();
        if let Some(editor) = self.editor.as_ref().filter(|_| !exiting) {
            while let Some((line, tail)) = rest.split_first() {
                if !editor.print(line) {
                    break;
                }
                rest = tail;
            }
            if rest.is_empty() {
                return;
            }
        }
        // stdout going away must not stop the client from leaving cleanly.
        let mut stdout = io::stdout().lock();
        if self.editor.is_some() {
            let _ = write!(stdout, "\r\x1b[K"); // over the editor's prompt
        }
        for line in rest {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
    }

    /// On a terminal, asks the line editor for the next line once the loop
    /// is ready for one: not while a HELLO awaits its answer, not while lines
    /// wait in the queue, not after the user left.
    fn prompt(&self) {
        let Some(editor) = &self.editor else { return };
        if self.user_quit || self.client.is_hello_pending() || !self.queue.is_empty() {
            return;
        }
        editor.request(if self.client.name().is_some() {
            "> "
        } else {
            "name: "
        });
    }
}

/// The line editor (rustyline) on its own thread: it reads one line per
/// request, and prints what the loop shows above the line being typed.
struct Editor {
    printer: RefCell<Box<dyn ExternalPrinter + Send>>,
    requests: Sender<&'static str>,
    /// A `readline` is under way (set here on request, cleared by the
    /// editor thread when it returns).
    reading: Arc<AtomicBool>,
}

impl Editor {
    /// Prints above the edited line; false when no `readline` is under way
    /// (the terminal is then in its normal mode: print directly).
    ///
    /// The line goes with its newline: between a request and the editor
    /// thread entering `readline` the printer writes as it is handed, and a
    /// line without its end would be wiped by the prompt drawn next.
    fn print(&self, line: &str) -> bool {
        self.reading.load(Ordering::SeqCst)
            && self.printer.borrow_mut().print(format!("{line}\n")).is_ok()
    }

    fn request(&self, prompt: &'static str) {
        if !self.reading.swap(true, Ordering::SeqCst) && self.requests.send(prompt).is_err() {
            self.reading.store(false, Ordering::SeqCst);
        }
    }
}

/// The terminal's settings when the program started, put back when it ends
/// (the line editor leaves raw mode only when its `readline` returns, and
/// it may be in one when the server goes away).
struct TerminalRestore(Option<rustix::termios::Termios>);

impl TerminalRestore {
    /// Only where the line editor runs (stdin and stdout both terminals):
    /// elsewhere the terminal is never changed, and the clean-up's escape
    /// sequence must not reach a stdout that is a file or a pipe.
    fn capture() -> Self {
        Self(
            uses_editor()
                .then(|| rustix::termios::tcgetattr(io::stdin()).ok())
                .flatten(),
        )
    }
}

/// Lines are edited (rustyline, escape sequences and all) only when stdin
/// and stdout are both terminals; otherwise plain lines in and out.
fn uses_editor() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

impl Drop for TerminalRestore {
    fn drop(&mut self) {
        if let Some(settings) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                io::stdin(),
                rustix::termios::OptionalActions::Now,
                settings,
            );
            // Leave the shell a clean line: no prompt or half-typed text.
            let mut stdout = io::stdout().lock();
            let _ = write!(stdout, "\r\x1b[K");
            let _ = stdout.flush();
        }
    }
}

/// After Ctrl-C or Ctrl-D the editor leaves its prompt (and any half-typed
/// text) on the line above the cursor: take it away, so that the program
/// ends on a clean line.
fn erase_abandoned_line() {
    let mut stdout = io::stdout().lock();
    let _ = write!(stdout, "\x1b[1A\r\x1b[K");
    let _ = stdout.flush();
}

/// Starts the line editor thread; lines come back through `sender` as from
/// the stdin thread, Ctrl-C as an interrupt and Ctrl-D as the end of input.
fn spawn_editor_thread(sender: Sender<UserInput>, poller: Arc<Poller>) -> io::Result<Editor> {
    let mut editor = rustyline::DefaultEditor::new().map_err(io::Error::other)?;
    let printer = editor.create_external_printer().map_err(io::Error::other)?;
    let (requests, prompts) = mpsc::channel::<&'static str>();
    let reading = Arc::new(AtomicBool::new(false));
    let done_reading = Arc::clone(&reading);
    std::thread::Builder::new()
        .name("editor".into())
        .spawn(move || {
            while let Ok(prompt) = prompts.recv() {
                let input = match editor.readline(prompt) {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                        }
                        UserInput::Line(line)
                    }
                    Err(ReadlineError::Interrupted) => {
                        erase_abandoned_line();
                        UserInput::Interrupt
                    }
                    Err(ReadlineError::Eof) => {
                        erase_abandoned_line();
                        UserInput::Eof
                    }
                    Err(error) => {
                        log::debug!("line editor failed: {error}");
                        UserInput::Eof
                    }
                };
                done_reading.store(false, Ordering::SeqCst);
                if sender.send(input).is_err() || poller.notify().is_err() {
                    return;
                }
            }
        })?;
    Ok(Editor {
        printer: RefCell::new(Box::new(printer)),
        requests,
        reading,
    })
}

/// The line for an event that is shown as is (not `Closed`, `Error` or
/// `IdleExit`, which depend on the loop's state). `None`: nothing to show.
fn render(event: &ClientEvent) -> Option<String> {
    Some(match event {
        ClientEvent::Message { from, text } => {
            format!("<{}> {}", escape(from.as_str()), escape(text.as_str()))
        }
        ClientEvent::Private { from, text } => {
            format!("*{}* {}", escape(from.as_str()), escape(text.as_str()))
        }
        ClientEvent::PrivateSent { to, text } => {
            format!("-> *{}* {}", escape(to.as_str()), escape(text.as_str()))
        }
        ClientEvent::Joined { name } => format!("* {} joined", escape(name.as_str())),
        ClientEvent::Left { name, reason } => format!(
            "* {} left ({})",
            escape(name.as_str()),
            describe_reason(*reason)
        ),
        ClientEvent::Roster { names } => {
            let names: Vec<String> = names.iter().map(|n| escape(n.as_str())).collect();
            format!("* users: {}", names.join(", "))
        }
        ClientEvent::Welcome { .. }
        | ClientEvent::Error { .. }
        | ClientEvent::IdleExit
        | ClientEvent::Closed { .. } => {
            return None;
        }
    })
}

fn describe_reason(reason: Reason) -> &'static str {
    reason.describe()
}

/// `! ` and the error, naming the problem: the server's detail when it says
/// more than the code, the whisper's recipient for `no such user`.
fn describe_error(code: ErrorCode, detail: &str, last_whisper: Option<Name>) -> String {
    let what = code.describe();
    let detail = escape(detail.trim());
    if code == ErrorCode::NoSuchUser
        && (detail.is_empty() || detail.eq_ignore_ascii_case(what))
        && let Some(to) = last_whisper
    {
        return format!("! {what}: {}", escape(to.as_str()));
    }
    if detail.is_empty() || detail.eq_ignore_ascii_case(what) {
        format!("! {what}")
    } else if detail.to_ascii_lowercase().starts_with(what) {
        format!("! {detail}")
    } else {
        format!("! {what}: {detail}")
    }
}

fn parse_command(line: &str) -> Command<'_> {
    let trimmed = line.trim();
    if trimmed == "/quit" || trimmed == "exit()" {
        return Command::Quit;
    }
    if trimmed == "/who" {
        return Command::Who;
    }
    if trimmed == "/help" {
        return Command::Help;
    }
    let (command, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    if command == "/msg" {
        return match rest.trim_start().split_once(' ') {
            Some((to, text)) if !text.trim().is_empty() => Command::Msg(to, text.trim_start()),
            _ => Command::Usage("/msg NAME TEXT"),
        };
    }
    if trimmed.starts_with('/') && !trimmed.starts_with("//") {
        return Command::Unknown(trimmed);
    }
    Command::Say(line)
}

/// Makes received text safe for a terminal: every control character (C0
/// including TAB and LF, DEL, C1) and every bidi control is written as a
/// visible escape (`\n`, `\t`, `\u{1b}`); everything else is kept.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{61c}')
}

/// Reads stdin line by line on its own thread (epoll cannot watch files or
/// `/dev/null`), waking the loop for each line and at the end of input.
fn spawn_stdin_thread(sender: Sender<UserInput>, poller: Arc<Poller>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let input = match stdin.read_until(b'\n', &mut buf) {
                    Ok(0) => UserInput::Eof,
                    Ok(_) => UserInput::Line(String::from_utf8_lossy(&buf).into_owned()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::debug!("stdin read failed: {e}");
                        UserInput::Eof
                    }
                };
                let done = matches!(input, UserInput::Eof);
                if sender.send(input).is_err() || poller.notify().is_err() || done {
                    return;
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_hides_every_control_character() {
        assert_eq!(escape("\u{1b}[31mred\u{7}"), "\\u{1b}[31mred\\u{7}");
        assert_eq!(escape("a\tb\nc\r"), "a\\tb\\nc\\r");
        assert_eq!(escape("\u{9b}x\u{7f}\u{202e}"), "\\u{9b}x\\u{7f}\\u{202e}");
        assert_eq!(escape("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse_command("hello"), Command::Say("hello"));
        assert_eq!(
            parse_command("/msg bob hi there"),
            Command::Msg("bob", "hi there")
        );
        assert_eq!(parse_command("/who"), Command::Who);
        assert_eq!(parse_command("/quit"), Command::Quit);
        assert_eq!(parse_command("exit()"), Command::Quit);
        for usage in ["/msg", "/msg bob", "/msg  bob  ", "/msg "] {
            assert_eq!(
                parse_command(usage),
                Command::Usage("/msg NAME TEXT"),
                "{usage:?}"
            );
        }
        assert_eq!(parse_command("/help"), Command::Help);
        assert_eq!(parse_command("/nope"), Command::Unknown("/nope"));
        assert_eq!(parse_command("/msgbob hi"), Command::Unknown("/msgbob hi"));
    }

    #[test]
    fn lines_match_the_contract() {
        let alice = Name::new("alice").unwrap();
        let bob = Name::new("bob").unwrap();
        let text = Text::new("hello").unwrap();
        let line = |e| render(&e).unwrap();
        assert_eq!(
            line(ClientEvent::Message {
                from: alice,
                text: text.clone()
            }),
            "<alice> hello"
        );
        assert_eq!(
            line(ClientEvent::Private {
                from: alice,
                text: text.clone()
            }),
            "*alice* hello"
        );
        assert_eq!(
            line(ClientEvent::PrivateSent { to: bob, text }),
            "-> *bob* hello"
        );
        assert_eq!(line(ClientEvent::Joined { name: bob }), "* bob joined");
        assert_eq!(
            line(ClientEvent::Left {
                name: bob,
                reason: Reason::SlowConsumer
            }),
            "* bob left (slow consumer)"
        );
        assert_eq!(
            line(ClientEvent::Roster {
                names: vec![alice, bob]
            }),
            "* users: alice, bob"
        );
        assert_eq!(
            describe_error(ErrorCode::NameTaken, "name taken", None),
            "! name taken"
        );
        assert_eq!(
            describe_error(ErrorCode::NoSuchUser, "no such user", Some(bob)),
            "! no such user: bob"
        );
        assert_eq!(
            describe_error(
                ErrorCode::NotRegistered,
                "not registered: send HELLO first",
                None
            ),
            "! not registered: send HELLO first"
        );
        assert_eq!(
            describe_error(ErrorCode::BadText, "\u{1b}x", None),
            "! bad text: \\u{1b}x"
        );
    }
}
