//! supervisord's faults: the codes its clients test for, and the fault string they print,
//! `NAME` or `NAME: detail` (`BAD_NAME: web`).

use std::fmt;

use taskmaster_core::Failure;

/// supervisord's fault codes (its `xmlrpc.Faults`), with their numbers on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    UnknownMethod = 1,
    IncorrectParameters = 2,
    BadArguments = 3,
    SignatureUnsupported = 4,
    ShutdownState = 6,
    BadName = 10,
    BadSignal = 11,
    NoFile = 20,
    NotExecutable = 21,
    Failed = 30,
    AbnormalTermination = 40,
    SpawnError = 50,
    AlreadyStarted = 60,
    NotRunning = 70,
    Success = 80,
    AlreadyAdded = 90,
    StillRunning = 91,
    CantReread = 92,
}

impl Code {
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The name supervisord's fault strings start with.
    pub fn name(self) -> &'static str {
        match self {
            Code::UnknownMethod => "UNKNOWN_METHOD",
            Code::IncorrectParameters => "INCORRECT_PARAMETERS",
            Code::BadArguments => "BAD_ARGUMENTS",
            Code::SignatureUnsupported => "SIGNATURE_UNSUPPORTED",
            Code::ShutdownState => "SHUTDOWN_STATE",
            Code::BadName => "BAD_NAME",
            Code::BadSignal => "BAD_SIGNAL",
            Code::NoFile => "NO_FILE",
            Code::NotExecutable => "NOT_EXECUTABLE",
            Code::Failed => "FAILED",
            Code::AbnormalTermination => "ABNORMAL_TERMINATION",
            Code::SpawnError => "SPAWN_ERROR",
            Code::AlreadyStarted => "ALREADY_STARTED",
            Code::NotRunning => "NOT_RUNNING",
            Code::Success => "SUCCESS",
            Code::AlreadyAdded => "ALREADY_ADDED",
            Code::StillRunning => "STILL_RUNNING",
            Code::CantReread => "CANT_REREAD",
        }
    }
}

/// A fault answer: a code and its string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: Code,
    pub text: String,
}

impl Fault {
    /// The bare fault: `SHUTDOWN_STATE`.
    pub fn new(code: Code) -> Fault {
        Fault {
            code,
            text: code.name().to_string(),
        }
    }

    /// The fault with a detail, as supervisord writes it: `BAD_NAME: web`.
    pub fn with(code: Code, detail: impl fmt::Display) -> Fault {
        Fault {
            code,
            text: format!("{}: {detail}", code.name()),
        }
    }

    /// The fault supervisord answers when a request for the process `name` fails this way.
    pub fn from_failure(failure: &Failure, name: &str) -> Fault {
        match failure {
            // A process a reload removed while the request waited is no longer a name.
            Failure::NoSuchProcess | Failure::Removed => Fault::with(Code::BadName, name),
            Failure::AlreadyStarted => Fault::with(Code::AlreadyStarted, name),
            Failure::NotRunning => Fault::with(Code::NotRunning, name),
            Failure::SpawnError(_) => Fault::with(Code::SpawnError, name),
            Failure::AbnormalTermination => Fault::with(Code::AbnormalTermination, name),
            Failure::ShuttingDown => Fault::new(Code::ShutdownState),
            Failure::AlreadyAdded => Fault::with(Code::AlreadyAdded, name),
            Failure::StillRunning => Fault::with(Code::StillRunning, name),
            // supervisord's answer for a stdin that takes nothing (closed, or none).
            Failure::NoStdin(_) => Fault::with(Code::NoFile, name),
            // It did not start, and will not by itself: supervisord's word for a start that
            // did not happen is this one.
            Failure::Blocked(why) => {
                Fault::with(Code::AbnormalTermination, format!("{name}: {why}"))
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.code.number())
    }
}
