//! Typed parameters and answers: what lets each method of the table ([`super::table`]) be a
//! plain Rust function from typed arguments to a typed value.
//!
//! A parameter's type ([`Param`]) says its XML-RPC type, for `system.methodSignature`, and
//! reads it from the call's value once, as supervisord does (an int where a string is expected
//! is refused; text is taken for an int, as Python's `int()` takes it), with a fault that names
//! the parameter: `INCORRECT_PARAMETERS: name must be a string, not an int`. A tuple of them
//! ([`Params`]) is a method's whole parameter list, whose length is checked first (bare
//! `INCORRECT_PARAMETERS`, as supervisord answers a call with the wrong number of arguments).
//! An answer's type ([`Answer`]) says its XML-RPC type and writes its value;
//! [`xml_struct!`] declares supervisord's structs, their members in the order written.

use super::fault::{Code, Fault};
use super::value::{fault_struct, Value};

/// The type of one parameter.
pub trait Param: Sized {
    /// Its XML-RPC type, as `system.methodSignature` and `system.methodHelp` say it.
    const TYPE: &'static str;
    /// Whether a call may leave it out (it is then at the end of the list).
    const OPTIONAL: bool = false;
    /// Reads the parameter `name` from its value.
    fn read(value: Value, name: &str) -> Result<Self, Fault>;
    /// The parameter when the call leaves it out.
    fn missing() -> Result<Self, Fault> {
        Err(Fault::new(Code::IncorrectParameters))
    }
}

/// A method's whole parameter list: a tuple of [`Param`]s.
pub trait Params: Sized {
    /// Each parameter's XML-RPC type, in order.
    fn types() -> Vec<&'static str>;
    /// Reads the list, whose parameters are called `names`.
    fn read(values: Vec<Value>, names: &[&str]) -> Result<Self, Fault>;
}

/// The type of an answer.
pub trait Answer {
    /// Its XML-RPC type, as `system.methodSignature` and `system.methodHelp` say it.
    const TYPE: &'static str;
    fn into_value(self) -> Value;
}

/// `INCORRECT_PARAMETERS: name must be a string, not an int`.
pub fn wrong_type(name: &str, expected: &str, value: &Value) -> Fault {
    Fault::with(
        Code::IncorrectParameters,
        format!("{name} must be {expected}, not {}", value.kind()),
    )
}

// ---- parameters --------------------------------------------------------------------------

/// Text; base64 data is taken as text too.
impl Param for String {
    const TYPE: &'static str = "string";
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        match value {
            Value::String(text) => Ok(text),
            Value::Base64(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            other => Err(wrong_type(name, "a string", &other)),
        }
    }
}

/// An integer, or text that is one (supervisord applies Python's `int()`).
impl Param for i64 {
    const TYPE: &'static str = "int";
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        match &value {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(i64::from(*b)),
            Value::String(text) => text
                .trim()
                .parse()
                .map_err(|_| wrong_type(name, "an integer", &value)),
            other => Err(wrong_type(name, "an integer", other)),
        }
    }
}

/// A boolean, or an int (0 is false).
impl Param for bool {
    const TYPE: &'static str = "boolean";
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        match value {
            Value::Bool(b) => Ok(b),
            Value::Int(i) => Ok(i != 0),
            other => Err(wrong_type(name, "a boolean", &other)),
        }
    }
}

/// An array of any values (`system.multicall`'s calls).
impl Param for Vec<Value> {
    const TYPE: &'static str = "array";
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        match value {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type(name, "an array", &other)),
        }
    }
}

/// A parameter a call may leave out.
impl<T: Param> Param for Option<T> {
    const TYPE: &'static str = T::TYPE;
    const OPTIONAL: bool = true;
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        T::read(value, name).map(Some)
    }
    fn missing() -> Result<Self, Fault> {
        Ok(None)
    }
}

/// A signal as given: a name (`HUP`, `SIGHUP`) or a number, as text or an int. It is checked
/// where supervisord checks it (after the name), so it stays text here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalText(pub String);

impl Param for SignalText {
    const TYPE: &'static str = "string";
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        match value {
            Value::Int(i) => Ok(SignalText(i.to_string())),
            other => String::read(other, name).map(SignalText),
        }
    }
}

/// Bytes for a process's stdin: text, or base64 data as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chars(pub Vec<u8>);

impl Param for Chars {
    const TYPE: &'static str = "string";
    fn read(value: Value, name: &str) -> Result<Self, Fault> {
        match value {
            Value::String(text) => Ok(Chars(text.into_bytes())),
            Value::Base64(bytes) => Ok(Chars(bytes)),
            other => Err(wrong_type(name, "a string", &other)),
        }
    }
}

macro_rules! params {
    ($($param:ident $at:tt),*) => {
        impl<$($param: Param),*> Params for ($($param,)*) {
            fn types() -> Vec<&'static str> {
                vec![$($param::TYPE),*]
            }

            #[allow(unused_variables, unused_mut)]
            fn read(values: Vec<Value>, names: &[&str]) -> Result<Self, Fault> {
                let optional: &[bool] = &[$($param::OPTIONAL),*];
                let least = optional.iter().filter(|optional| !**optional).count();
                if !(least..=optional.len()).contains(&values.len()) {
                    return Err(Fault::new(Code::IncorrectParameters));
                }
                let mut values = values.into_iter();
                Ok(($(
                    match values.next() {
                        Some(value) => $param::read(value, names.get($at).copied().unwrap_or("a parameter"))?,
                        None => $param::missing()?,
                    },
                )*))
            }
        }
    };
}

params!();
params!(A 0);
params!(A 0, B 1);
params!(A 0, B 1, C 2);

// ---- answers ---------------------------------------------------------------------------

impl Answer for bool {
    const TYPE: &'static str = "boolean";
    fn into_value(self) -> Value {
        Value::Bool(self)
    }
}

/// An int; written `<int>` when it fits in 32 bits, as every number supervisord sends does.
impl Answer for i64 {
    const TYPE: &'static str = "int";
    fn into_value(self) -> Value {
        Value::Int(self)
    }
}

impl Answer for String {
    const TYPE: &'static str = "string";
    fn into_value(self) -> Value {
        Value::String(self)
    }
}

impl Answer for &'static str {
    const TYPE: &'static str = "string";
    fn into_value(self) -> Value {
        Value::string(self)
    }
}

impl<T: Answer> Answer for Vec<T> {
    const TYPE: &'static str = "array";
    fn into_value(self) -> Value {
        Value::Array(self.into_iter().map(Answer::into_value).collect())
    }
}

/// A value whose type supervisord varies (`autorestart` is a boolean or `"unexpected"`).
impl Answer for Value {
    const TYPE: &'static str = "value";
    fn into_value(self) -> Value {
        self
    }
}

/// One result of `system.multicall`: the call's value, or its fault as a struct.
impl Answer for Result<Value, Fault> {
    const TYPE: &'static str = "value";
    fn into_value(self) -> Value {
        self.unwrap_or_else(|fault| fault_struct(&fault))
    }
}

/// Declares a struct of supervisord's: a Rust struct whose fields are [`Answer`]s, written as
/// an XML-RPC struct whose members are the fields, named and ordered as written.
macro_rules! xml_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $crate::xmlrpc::typed::Answer for $name {
            const TYPE: &'static str = "struct";
            fn into_value(self) -> $crate::xmlrpc::value::Value {
                $crate::xmlrpc::value::Value::Struct(vec![$((
                    stringify!($field).to_string(),
                    $crate::xmlrpc::typed::Answer::into_value(self.$field),
                ),)*])
            }
        }
    };
}
pub(crate) use xml_struct;

#[cfg(test)]
mod tests {
    use super::*;

    fn read<P: Params>(values: Vec<Value>, names: &[&str]) -> Result<P, String> {
        P::read(values, names).map_err(|fault| fault.text)
    }

    #[test]
    fn parameters_are_counted_then_read_each_with_its_name() {
        let names = ["name", "wait"];
        let one = vec![Value::string("web")];
        assert_eq!(
            read::<(String, Option<bool>)>(one, &names),
            Ok(("web".to_string(), None))
        );
        let both = vec![Value::string("web"), Value::Int(0)];
        assert_eq!(
            read::<(String, Option<bool>)>(both, &names),
            Ok(("web".to_string(), Some(false)))
        );
        assert_eq!(
            read::<(String, Option<bool>)>(Vec::new(), &names),
            Err("INCORRECT_PARAMETERS".to_string())
        );
        let three = vec![Value::string("a"), Value::Bool(true), Value::Nil];
        assert_eq!(
            read::<(String, Option<bool>)>(three, &names),
            Err("INCORRECT_PARAMETERS".to_string())
        );
        let typed_wrong = vec![Value::Int(3)];
        assert_eq!(
            read::<(String, Option<bool>)>(typed_wrong, &names),
            Err("INCORRECT_PARAMETERS: name must be a string, not an int".to_string())
        );
        let wait_wrong = vec![Value::string("web"), Value::string("yes")];
        assert_eq!(
            read::<(String, Option<bool>)>(wait_wrong, &names),
            Err("INCORRECT_PARAMETERS: wait must be a boolean, not a string".to_string())
        );
        assert_eq!(read::<()>(Vec::new(), &[]), Ok(()));
    }

    #[test]
    fn ints_take_text_and_signals_take_numbers() {
        let names = ["offset", "signal"];
        let values = vec![Value::string(" -12 "), Value::Int(1)];
        let (offset, signal) = read::<(i64, SignalText)>(values, &names).expect("read");
        assert_eq!((offset, signal), (-12, SignalText("1".to_string())));
        let values = vec![Value::string("twelve"), Value::string("HUP")];
        assert_eq!(
            read::<(i64, SignalText)>(values, &names),
            Err("INCORRECT_PARAMETERS: offset must be an integer, not a string".to_string())
        );
    }

    #[test]
    fn signatures_come_from_the_types() {
        assert_eq!(
            <(String, Option<bool>)>::types(),
            ["string", "boolean"].to_vec()
        );
        assert_eq!(
            <(String, i64, i64)>::types(),
            ["string", "int", "int"].to_vec()
        );
        assert!(<()>::types().is_empty());
    }

    xml_struct! {
        /// A test struct.
        pub struct Pair {
            name: String,
            count: i64,
        }
    }

    #[test]
    fn structs_are_written_with_their_members_in_order() {
        let pair = Pair {
            name: "web".to_string(),
            count: 2,
        };
        assert_eq!(
            pair.into_value(),
            Value::record([("name", Value::string("web")), ("count", Value::Int(2))])
        );
    }
}
