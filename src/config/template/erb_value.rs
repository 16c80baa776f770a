//! The values ERB expressions compute ([`Value`]: nil, booleans, integers, strings, arrays) and
//! the operators on them (`==`, `+`, `[]`); their methods are in `erb_methods.rs`.

/// The largest string or array a template may build, in bytes or items.
pub(super) const MAX_VALUE_BYTES: usize = super::super::node::MAX_INPUT_BYTES;

/// A Ruby value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    /// Ruby's truthiness: everything but `nil` and `false`.
    pub(super) fn truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    /// The class name, for messages.
    pub(super) fn class(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            Value::Int(_) => "an Integer",
            Value::Str(_) => "a String",
            Value::Array(_) => "an Array",
        }
    }

    /// `to_s`: what `<%= %>` writes.
    pub(super) fn to_s(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
            Value::Array(_) => self.inspect(),
        }
    }

    /// `inspect`, as `Array#to_s` writes its items.
    pub(super) fn inspect(&self) -> String {
        match self {
            Value::Nil => "nil".to_string(),
            Value::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        '\r' => out.push_str("\\r"),
                        '\u{1b}' => out.push_str("\\e"),
                        '#' => out.push('#'),
                        c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push('"');
                out
            }
            Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(Value::inspect).collect();
                format!("[{}]", inner.join(", "))
            }
            other => other.to_s(),
        }
    }

    /// ActiveSupport's `blank?`: nil, false, empty or whitespace-only strings, empty arrays.
    pub(super) fn blank(&self) -> bool {
        match self {
            Value::Nil | Value::Bool(false) => true,
            Value::Bool(true) | Value::Int(_) => false,
            Value::Str(s) => s.chars().all(char::is_whitespace),
            Value::Array(items) => items.is_empty(),
        }
    }

    /// The size of the value, for the budget.
    pub(super) fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Array(items) => items.iter().map(Value::weight).sum::<usize>() + items.len(),
            _ => 8,
        }
    }
}

/// Ruby's `String#strip` set: ASCII whitespace and NUL.
pub(super) fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0')
}

/// Ruby's `==`.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    a == b
}

/// `recv[index]`: an array item, a character, or a substring.
pub(super) fn index(recv: &Value, index: &Value) -> Result<Value, String> {
    let at = |len: usize, i: i64| -> Option<usize> {
        let len = i64::try_from(len).ok()?;
        let i = if i < 0 { len + i } else { i };
        usize::try_from(i).ok().filter(|&i| (i as i64) < len)
    };
    match (recv, index) {
        (Value::Array(items), Value::Int(i)) => Ok(at(items.len(), *i)
            .and_then(|i| items.get(i).cloned())
            .unwrap_or(Value::Nil)),
        (Value::Str(s), Value::Int(i)) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(at(chars.len(), *i)
                .map(|i| Value::Str(chars[i].to_string()))
                .unwrap_or(Value::Nil))
        }
        (Value::Str(s), Value::Str(sub)) => Ok(if s.contains(sub.as_str()) {
            Value::Str(sub.clone())
        } else {
            Value::Nil
        }),
        (Value::Nil, _) => Err("undefined method `[]` for nil".to_string()),
        (recv, index) => Err(format!(
            "no implicit conversion of {} into Integer ({}[…])",
            index.class(),
            recv.class()
        )),
    }
}

/// `a + b`.
pub(super) fn add(a: Value, b: Value) -> Result<Value, String> {
    match (a, b) {
        (Value::Str(mut a), Value::Str(b)) => {
            a.push_str(&b);
            Ok(Value::Str(a))
        }
        (Value::Int(a), Value::Int(b)) => a
            .checked_add(b)
            .map(Value::Int)
            .ok_or_else(|| "integer overflow in `+`".to_string()),
        (Value::Array(mut a), Value::Array(b)) => {
            a.extend(b);
            Ok(Value::Array(a))
        }
        (Value::Str(_), b) => Err(format!(
            "no implicit conversion of {} into String",
            b.class()
        )),
        (Value::Int(_), b) => Err(format!("{} can't be coerced into Integer", b.class())),
        (a, _) => Err(undefined("+", &a)),
    }
}

/// `a < b` and friends (`op`): integers with integers, strings with strings (bytewise).
pub(super) fn compare(a: &Value, b: &Value, op: &str) -> Result<bool, String> {
    let ordering = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Int(_) | Value::Str(_), _) => {
            return Err(format!(
                "comparison of {} with {} failed",
                a.class(),
                b.class()
            ))
        }
        _ => return Err(undefined(op, a)),
    };
    Ok(match op {
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    })
}

/// Ruby's `NoMethodError` message for `name` on `recv`.
pub(super) fn undefined(name: &str, recv: &Value) -> String {
    format!("undefined method `{name}` for {}", recv.class())
}
