//! Signals by name and number, without libc.
//!
//! The configuration names signals (`stopsignal: TERM`); the supervisor sends numbers. This
//! crate does no I/O and must not depend on libc, so it carries its own table, in the Linux
//! numbering shared by x86_64 and aarch64 (the platforms taskmaster runs on). Resolving the
//! name here, once, means nothing past validation ever handles a signal name again.
//!
//! Real-time signals are named as `kill -l` names them: `RTMIN` (34), `RTMIN+1` ... `RTMIN+29`,
//! and `RTMAX` (64); `RTMAX-N` is accepted on input. Signals 32 and 33 are not accepted:
//! the C library reserves them for its threads, they have no name, and sending them to a
//! child is never what a configuration means.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::did_you_mean;

/// A signal number that is known to be valid (1..=31 or 34..=64).
///
/// Deserialization checks the number too, so a `Signal` received over the wire is as
/// trustworthy as one read from a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct Signal(i32);

/// Names of signals 0..=64 (index = number); `""` where the number is not a signal.
const NAMES: [&str; 65] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS", "", "", "RTMIN", "RTMIN+1",
    "RTMIN+2", "RTMIN+3", "RTMIN+4", "RTMIN+5", "RTMIN+6", "RTMIN+7", "RTMIN+8", "RTMIN+9",
    "RTMIN+10", "RTMIN+11", "RTMIN+12", "RTMIN+13", "RTMIN+14", "RTMIN+15", "RTMIN+16", "RTMIN+17",
    "RTMIN+18", "RTMIN+19", "RTMIN+20", "RTMIN+21", "RTMIN+22", "RTMIN+23", "RTMIN+24", "RTMIN+25",
    "RTMIN+26", "RTMIN+27", "RTMIN+28", "RTMIN+29", "RTMAX",
];

/// Other names accepted on input.
const ALIASES: [(&str, i32); 2] = [("IOT", 6), ("POLL", 29)];

const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const QUIT: Signal = Signal(3);
    pub const ILL: Signal = Signal(4);
    pub const TRAP: Signal = Signal(5);
    pub const ABRT: Signal = Signal(6);
    pub const BUS: Signal = Signal(7);
    pub const FPE: Signal = Signal(8);
    pub const KILL: Signal = Signal(9);
    pub const USR1: Signal = Signal(10);
    pub const SEGV: Signal = Signal(11);
    pub const USR2: Signal = Signal(12);
    pub const PIPE: Signal = Signal(13);
    pub const ALRM: Signal = Signal(14);
    pub const TERM: Signal = Signal(15);
    pub const CHLD: Signal = Signal(17);
    pub const CONT: Signal = Signal(18);
    pub const STOP: Signal = Signal(19);
    pub const TSTP: Signal = Signal(20);
    pub const TTIN: Signal = Signal(21);
    pub const TTOU: Signal = Signal(22);
    pub const WINCH: Signal = Signal(28);

    pub const SYS: Signal = Signal(31);

    /// Whether the kernel sends this signal for a fault of the program itself (a bad memory
    /// access, an illegal instruction, an abort): a death by it is a crash.
    pub fn is_fault(self) -> bool {
        [
            Signal::SEGV,
            Signal::BUS,
            Signal::ILL,
            Signal::FPE,
            Signal::ABRT,
            Signal::SYS,
            Signal::TRAP,
        ]
        .contains(&self)
    }

    /// The signal's number, as `kill(2)` takes it.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The name without `SIG`: `"TERM"`, `"RTMIN+3"`, `"RTMAX"`.
    pub fn name(self) -> &'static str {
        usize::try_from(self.0)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("")
    }

    /// The signal with this number, if it is one (1..=31 or 34..=64).
    pub fn from_number(n: i32) -> Option<Signal> {
        let name = NAMES.get(usize::try_from(n).ok()?)?;
        (!name.is_empty()).then_some(Signal(n))
    }

    fn from_name(upper: &str) -> Option<Signal> {
        if let Some(n) = NAMES.iter().position(|&name| name == upper) {
            return i32::try_from(n).ok().and_then(Signal::from_number);
        }
        if let Some(&(_, n)) = ALIASES.iter().find(|(alias, _)| *alias == upper) {
            return Signal::from_number(n);
        }
        let offset = |digits: &str| -> Option<i32> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<i32>().ok().filter(|&n| n <= RTMAX - RTMIN)
        };
        if let Some(rest) = upper.strip_prefix("RTMIN+") {
            return Signal::from_number(RTMIN + offset(rest)?);
        }
        if let Some(rest) = upper.strip_prefix("RTMAX-") {
            return Signal::from_number(RTMAX - offset(rest)?);
        }
        None
    }
}

impl FromStr for Signal {
    type Err = String;

    /// Accepts `TERM`, `SIGTERM`, `term`, `sigterm` and `15`, and the real-time forms
    /// `RTMIN`, `RTMIN+N`, `RTMAX-N`, `RTMAX`.
    fn from_str(text: &str) -> Result<Signal, String> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
            return bare
                .parse::<i32>()
                .ok()
                .and_then(Signal::from_number)
                .ok_or_else(|| {
                    format!("unknown signal {text:?} (signal numbers are 1 to 31 and 34 to 64)")
                });
        }
        if let Some(signal) = Signal::from_name(bare) {
            return Ok(signal);
        }
        let names: Vec<&str> = NAMES[1..32].to_vec();
        Err(match did_you_mean(bare, &names) {
            Some(name) => format!("unknown signal {text:?} (did you mean {name}?)"),
            None => format!("unknown signal {text:?}"),
        })
    }
}

impl fmt::Display for Signal {
    /// `SIGTERM`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl TryFrom<i32> for Signal {
    type Error = String;

    fn try_from(n: i32) -> Result<Signal, String> {
        Signal::from_number(n).ok_or_else(|| format!("{n} is not a signal number"))
    }
}

impl From<Signal> for i32 {
    fn from(signal: Signal) -> i32 {
        signal.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_parses_from_name_with_or_without_sig_in_any_case_and_from_number() {
        for text in [
            "TERM", "SIGTERM", "term", "sigterm", "SigTerm", "15", "SIG15", " TERM ",
        ] {
            assert_eq!(text.parse::<Signal>(), Ok(Signal::TERM), "{text}");
        }
        assert_eq!("usr1".parse::<Signal>(), Ok(Signal::USR1));
        assert_eq!("9".parse::<Signal>(), Ok(Signal::KILL));
    }

    #[test]
    fn aliases_iot_and_poll_resolve_to_abrt_and_io() {
        assert_eq!("IOT".parse::<Signal>().map(Signal::number), Ok(6));
        assert_eq!("SIGPOLL".parse::<Signal>().map(Signal::number), Ok(29));
    }

    #[test]
    fn whole_table_matches_linux_numbering() {
        let table = [
            ("HUP", 1),
            ("INT", 2),
            ("QUIT", 3),
            ("ILL", 4),
            ("TRAP", 5),
            ("ABRT", 6),
            ("BUS", 7),
            ("FPE", 8),
            ("KILL", 9),
            ("USR1", 10),
            ("SEGV", 11),
            ("USR2", 12),
            ("PIPE", 13),
            ("ALRM", 14),
            ("TERM", 15),
            ("STKFLT", 16),
            ("CHLD", 17),
            ("CONT", 18),
            ("STOP", 19),
            ("TSTP", 20),
            ("TTIN", 21),
            ("TTOU", 22),
            ("URG", 23),
            ("XCPU", 24),
            ("XFSZ", 25),
            ("VTALRM", 26),
            ("PROF", 27),
            ("WINCH", 28),
            ("IO", 29),
            ("PWR", 30),
            ("SYS", 31),
            ("RTMIN", 34),
            ("RTMAX", 64),
        ];
        for (name, number) in table {
            let signal: Signal = name.parse().unwrap();
            assert_eq!(signal.number(), number, "{name}");
            assert_eq!(signal.name(), name);
            assert_eq!(Signal::from_number(number), Some(signal));
        }
    }

    #[test]
    fn realtime_signals_are_named_from_rtmin_and_parse_both_ways() {
        assert_eq!(Signal::from_number(37).map(Signal::name), Some("RTMIN+3"));
        assert_eq!(Signal::from_number(63).map(Signal::name), Some("RTMIN+29"));
        assert_eq!("SIGRTMIN+3".parse::<Signal>().map(Signal::number), Ok(37));
        assert_eq!("rtmax-1".parse::<Signal>().map(Signal::number), Ok(63));
        assert_eq!("RTMAX-30".parse::<Signal>().map(Signal::number), Ok(34));
        assert!("RTMAX-31".parse::<Signal>().is_err());
        assert!("RTMIN+31".parse::<Signal>().is_err());
        assert!("RTMIN+".parse::<Signal>().is_err());
        assert!("RTMIN+99999999999999".parse::<Signal>().is_err());
    }

    #[test]
    fn from_number_accepts_1_to_64_except_reserved_32_and_33() {
        assert_eq!(Signal::from_number(0), None);
        assert_eq!(Signal::from_number(-15), None);
        assert_eq!(Signal::from_number(32), None);
        assert_eq!(Signal::from_number(33), None);
        assert_eq!(Signal::from_number(65), None);
        for n in (1..=31).chain(34..=64) {
            assert_eq!(Signal::from_number(n).map(Signal::number), Some(n));
        }
    }

    #[test]
    fn unknown_signal_suggests_the_closest_name() {
        assert_eq!(
            "TERMM".parse::<Signal>(),
            Err(r#"unknown signal "TERMM" (did you mean TERM?)"#.to_string())
        );
        assert_eq!(
            "SIGUSR3".parse::<Signal>(),
            Err(r#"unknown signal "SIGUSR3" (did you mean USR1?)"#.to_string())
        );
        assert_eq!(
            "bogus".parse::<Signal>(),
            Err(r#"unknown signal "bogus""#.to_string())
        );
    }

    #[test]
    fn out_of_range_numbers_are_rejected() {
        for text in ["0", "32", "65", "99999999999999999999", "-1", "SIG", ""] {
            assert!(text.parse::<Signal>().is_err(), "{text}");
        }
        assert_eq!(
            "99".parse::<Signal>(),
            Err(r#"unknown signal "99" (signal numbers are 1 to 31 and 34 to 64)"#.to_string())
        );
    }

    #[test]
    fn display_adds_sig() {
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(
            Signal::from_number(35).map(|s| s.to_string()),
            Some("SIGRTMIN+1".into())
        );
    }
}
