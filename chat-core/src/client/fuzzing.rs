//! Drivers that check the client's invariants on arbitrary input, for fuzz
//! targets (thin shims over [`drive`]) and the property tests.

use super::*;

/// Interprets `data` as a script of server bytes, user intents and clock
/// ticks, runs it against a [`Client`] whose clock starts at `start`, and
/// panics if an invariant breaks: one `Closed` at most, always last, and
/// always reached by the final end of stream; no output, no deadline and no
/// event after it; the idle exit exactly when a model of its own (the
/// last user intent while open, plus the idle time) says, and the
/// deadline the model's; the client's memory bounded whatever the server
/// sends.
///
/// Each step takes a control byte `c`: `c % 8` in `0..=3` feeds the next
/// `c / 8 + 1` bytes as server input; 4 advances the clock by `c / 8`
/// seconds and calls `handle_timeout`; 5 writes `c / 8` bytes of output;
/// 6 is a user intent chosen by `c / 8`; 7 is end of stream.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))] // `crate::fuzzing` re-exports it
pub fn drive(start: Instant, data: &[u8]) {
    let idle = Duration::from_secs(10);
    let mut client = Client::new(
        ClientConfig {
            idle_exit: Some(idle),
            quit_linger: LINGER,
        },
        start,
    );
    let mut model = Model {
        now: start,
        activity: start,
        open: true,
        idle_exit_due: false,
        quit_at: None,
        close_due: false,
        closed_seen: false,
        idle,
    };
    let mut rest = data;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        let arg = usize::from(c / 8);
        match c % 8 {
            0..=3 => {
                let (chunk, tail) = rest.split_at((arg + 1).min(rest.len()));
                rest = tail;
                client.handle_input(model.now, chunk);
            }
            4 => {
                model.now += Duration::from_secs(u64::from(c / 8));
                if model.open && model.now >= model.activity + idle {
                    model.idle_exit_due = true;
                }
                if !model.closed_seen && model.quit_at.is_some_and(|at| model.now >= at + LINGER) {
                    model.close_due = true;
                }
                client.handle_timeout(model.now);
            }
            5 => client.handle_written(arg),
            6 => intent(&mut client, &mut model, arg),
            _ => client.handle_eof(model.now),
        }
        check(&mut client, &mut model);
    }
    client.handle_eof(model.now);
    check(&mut client, &mut model);
    assert!(model.closed_seen, "end of stream always closes the client");
}

/// The quit linger the driver configures.
const LINGER: Duration = Duration::from_secs(3);

/// What the driver expects of the client's lifecycle, kept apart from
/// the client's own state.
struct Model {
    now: Instant,
    /// The last user intent while open.
    activity: Instant,
    /// Neither quitting nor closed.
    open: bool,
    /// An IdleExit event must come now.
    idle_exit_due: bool,
    /// When we quit (by intent or idle exit).
    quit_at: Option<Instant>,
    /// The quit linger ran out: Closed must come now.
    close_due: bool,
    closed_seen: bool,
    idle: Duration,
}

fn intent(client: &mut Client, model: &mut Model, which: usize) {
    let now = model.now;
    let name = match which % 3 {
        0 => Name::new("alice"),
        1 => Name::new("bob"),
        _ => Name::new("Carol"),
    };
    let (Ok(name), Ok(text)) = (name, Text::new("hi")) else {
        return;
    };
    if which % 6 <= 3 && model.open {
        model.activity = now;
    }
    // Refusals are fine here; the invariants are what is checked.
    let _refused = match which % 6 {
        0 => client.hello(now, name),
        1 => client.say(now, text),
        2 => client.whisper(now, name, text),
        3 => client.who(now),
        4 => {
            client.quit(now);
            if model.open {
                model.quit_at = Some(now);
            }
            model.open = false;
            Ok(())
        }
        _ => Ok(()),
    };
}

/// Drains the events of one step and checks them and the client's state
/// against the model.
fn check(client: &mut Client, model: &mut Model) {
    while let Some(event) = client.poll_event() {
        assert!(!model.closed_seen, "an event after Closed: {event:?}");
        match event {
            ClientEvent::Closed { .. } => {
                model.closed_seen = true;
                model.open = false;
            }
            ClientEvent::IdleExit => {
                assert!(model.idle_exit_due, "idle exit before its time");
                model.idle_exit_due = false;
                model.open = false;
                model.quit_at = Some(model.now);
            }
            _ => {}
        }
    }
    assert!(!model.idle_exit_due || !model.open, "idle exit missed");
    model.idle_exit_due = false;
    assert!(
        !model.close_due || model.closed_seen,
        "the quit linger ran out without a close"
    );
    model.close_due = false;
    assert_eq!(client.is_closed(), model.closed_seen);
    if model.closed_seen {
        assert!(client.outbound().is_empty(), "output after Closed");
    }
    let expected = if model.closed_seen {
        None
    } else if model.open {
        Some(model.activity + model.idle)
    } else {
        model.quit_at.map(|at| at + LINGER)
    };
    assert_eq!(client.poll_timeout(), expected, "the deadline");
    // Whatever the server sent, the roster is bounded, and the input
    // buffer holds at most one frame.
    assert!(client.roster.len() <= MAX_ROSTER && client.listing.len() <= MAX_ROSTER);
    assert!(client.deframer.buffered() <= crate::codec::HEADER_LEN + crate::MAX_FRAME);
}
