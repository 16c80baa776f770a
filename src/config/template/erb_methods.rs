//! The methods ERB expressions call on [`Value`]s, as Ruby (and ActiveSupport, which Kamal
//! loads) define them: [`call`] one by name; errors are Ruby's messages.

use super::erb_value::{equal, is_ruby_space, undefined, Value};

/// Ruby's `String#to_i`: leading whitespace, a sign, digits (with `_` between them).
pub(super) fn string_to_i(s: &str) -> Result<i64, String> {
    let t = s.trim_start_matches(is_ruby_space);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut value: i64 = 0;
    let mut prev_digit = false;
    for c in digits.chars() {
        match c {
            '0'..='9' => {
                let d = i64::from(c as u8 - b'0');
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(d))
                    .ok_or_else(|| "`to_i` of a number too large for 64 bits".to_string())?;
                prev_digit = true;
            }
            '_' if prev_digit => prev_digit = false,
            _ => break,
        }
    }
    Ok(if negative { -value } else { value })
}

/// Ruby's `String#split`: by whitespace (dropping empty fields) without a separator or with
/// `" "`, else by the literal separator; trailing empty fields are removed unless `limit` is
/// negative; a positive `limit` caps the number of fields.
pub(super) fn split(s: &str, sep: Option<&str>, limit: i64) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let max = usize::try_from(limit).ok().filter(|&l| l > 0);
    match sep {
        None | Some(" ") => {
            let mut rest = s.trim_start_matches(is_ruby_space);
            while !rest.is_empty() {
                if max.is_some_and(|m| fields.len() + 1 == m) {
                    fields.push(rest.to_string());
                    break;
                }
                let end = rest.find(is_ruby_space).unwrap_or(rest.len());
                fields.push(rest[..end].to_string());
                rest = rest[end..].trim_start_matches(is_ruby_space);
            }
            if limit < 0 && s.ends_with(is_ruby_space) && !fields.is_empty() {
                fields.push(String::new());
            }
        }
        Some("") => {
            let chars: Vec<char> = s.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                if max.is_some_and(|m| fields.len() + 1 == m) {
                    fields.push(chars[i..].iter().collect());
                    break;
                }
                fields.push(c.to_string());
            }
        }
        Some(sep) => {
            let mut rest = s;
            loop {
                if max.is_some_and(|m| fields.len() + 1 == m) {
                    fields.push(rest.to_string());
                    break;
                }
                match rest.find(sep) {
                    Some(p) => {
                        fields.push(rest[..p].to_string());
                        rest = &rest[p + sep.len()..];
                    }
                    None => {
                        fields.push(rest.to_string());
                        break;
                    }
                }
            }
        }
    }
    if limit == 0 {
        while fields.last().is_some_and(String::is_empty) {
            fields.pop();
        }
    }
    fields
}

/// Ruby's `String#tr` with ranges (`a-z`), without `^` negation.
fn tr(s: &str, from: &str, to: &str) -> String {
    fn expand(set: &str) -> Vec<char> {
        let chars: Vec<char> = set.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i] <= chars[i + 2] {
                out.extend(chars[i]..=chars[i + 2]);
                i += 3;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }
    let from = expand(from);
    let to = expand(to);
    s.chars()
        .filter_map(|c| match from.iter().position(|&f| f == c) {
            None => Some(c),
            Some(_) if to.is_empty() => None,
            Some(i) => Some(*to.get(i).or(to.last()).unwrap_or(&c)),
        })
        .collect()
}

fn str_arg<'v>(name: &str, arg: Option<&'v Value>) -> Result<&'v str, String> {
    match arg {
        Some(Value::Str(s)) => Ok(s),
        Some(other) => Err(format!(
            "no implicit conversion of {} into String (argument of `{name}`)",
            other.class()
        )),
        None => Err(format!("`{name}` needs an argument")),
    }
}

fn int_arg(name: &str, arg: Option<&Value>) -> Result<i64, String> {
    match arg {
        Some(Value::Int(i)) => Ok(*i),
        None => Ok(0),
        Some(other) => Err(format!(
            "no implicit conversion of {} into Integer (argument of `{name}`)",
            other.class()
        )),
    }
}

/// Call `name` (a method of [`super::erb_expr::is_method`]) on `recv` with `args`; the error
/// is Ruby's message.
pub(super) fn call(recv: Value, name: &str, args: &[Value]) -> Result<Value, String> {
    // Methods every value has.
    match name {
        "nil?" => return Ok(Value::Bool(recv == Value::Nil)),
        "present?" => return Ok(Value::Bool(!recv.blank())),
        "blank?" => return Ok(Value::Bool(recv.blank())),
        "presence" => return Ok(if recv.blank() { Value::Nil } else { recv }),
        "to_s" => return Ok(Value::Str(recv.to_s())),
        "freeze" | "dup" | "itself" => return Ok(recv),
        _ => {}
    }
    match recv {
        Value::Nil => match name {
            "to_i" => Ok(Value::Int(0)),
            "to_a" => Ok(Value::Array(Vec::new())),
            _ => Err(undefined(name, &Value::Nil)),
        },
        Value::Int(i) => match name {
            "to_i" => Ok(Value::Int(i)),
            _ => Err(undefined(name, &Value::Int(i))),
        },
        Value::Str(s) => string_method(s, name, args),
        Value::Array(items) => array_method(items, name, args),
        recv @ Value::Bool(_) => Err(undefined(name, &recv)),
    }
}

fn string_method(s: String, name: &str, args: &[Value]) -> Result<Value, String> {
    let str_value = |v: String| Ok(Value::Str(v));
    match name {
        "to_str" => str_value(s),
        "to_i" => string_to_i(&s).map(Value::Int),
        "strip" => str_value(s.trim_matches(is_ruby_space).to_string()),
        "lstrip" => str_value(s.trim_start_matches(is_ruby_space).to_string()),
        "rstrip" => str_value(s.trim_end_matches(is_ruby_space).to_string()),
        "chomp" => match args.first() {
            None => str_value(super::shell::chomp(&s).to_string()),
            Some(_) => {
                let suffix = str_arg(name, args.first())?;
                str_value(s.strip_suffix(suffix).unwrap_or(&s).to_string())
            }
        },
        "chop" => {
            let mut t = s;
            if t.ends_with("\r\n") {
                t.truncate(t.len() - 2);
            } else {
                t.pop();
            }
            str_value(t)
        }
        "upcase" => str_value(s.to_uppercase()),
        "downcase" => str_value(s.to_lowercase()),
        "capitalize" => {
            let mut chars = s.chars();
            str_value(match chars.next() {
                Some(c) => c
                    .to_uppercase()
                    .chain(chars.as_str().to_lowercase().chars())
                    .collect(),
                None => String::new(),
            })
        }
        "squish" => str_value(s.split_whitespace().collect::<Vec<_>>().join(" ")),
        "empty?" => Ok(Value::Bool(s.is_empty())),
        "any?" => Err(undefined(name, &Value::Str(s))),
        "delete_prefix" => {
            let prefix = str_arg(name, args.first())?;
            str_value(s.strip_prefix(prefix).unwrap_or(&s).to_string())
        }
        "delete_suffix" => {
            let suffix = str_arg(name, args.first())?;
            str_value(s.strip_suffix(suffix).unwrap_or(&s).to_string())
        }
        "start_with?" | "end_with?" => {
            for arg in args {
                let a = str_arg(name, Some(arg))?;
                let yes = if name == "start_with?" {
                    s.starts_with(a)
                } else {
                    s.ends_with(a)
                };
                if yes {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "include?" => Ok(Value::Bool(s.contains(str_arg(name, args.first())?))),
        "split" => {
            let sep = match args.first() {
                None | Some(Value::Nil) => None,
                Some(_) => Some(str_arg(name, args.first())?),
            };
            let limit = int_arg(name, args.get(1))?;
            Ok(Value::Array(
                split(&s, sep, limit).into_iter().map(Value::Str).collect(),
            ))
        }
        "lines" => Ok(Value::Array(
            s.split_inclusive('\n')
                .map(|l| Value::Str(l.to_string()))
                .collect(),
        )),
        "length" | "size" => Ok(Value::Int(
            i64::try_from(s.chars().count()).unwrap_or(i64::MAX),
        )),
        "reverse" => str_value(s.chars().rev().collect()),
        "tr" => {
            let from = str_arg(name, args.first())?;
            let to = str_arg(name, args.get(1))?;
            str_value(tr(&s, from, to))
        }
        "sub" | "gsub" => {
            let pattern = str_arg(name, args.first())?;
            let with = str_arg(name, args.get(1))?;
            str_value(if name == "sub" {
                s.replacen(pattern, with, 1)
            } else if pattern.is_empty() {
                return Err("`gsub` with an empty pattern is not supported".to_string());
            } else {
                s.replace(pattern, with)
            })
        }
        _ => Err(undefined(name, &Value::Str(s))),
    }
}

fn array_method(items: Vec<Value>, name: &str, args: &[Value]) -> Result<Value, String> {
    match name {
        "to_a" => Ok(Value::Array(items)),
        "first" => Ok(items.into_iter().next().unwrap_or(Value::Nil)),
        "last" => Ok(items.into_iter().next_back().unwrap_or(Value::Nil)),
        "length" | "size" | "count" => {
            Ok(Value::Int(i64::try_from(items.len()).unwrap_or(i64::MAX)))
        }
        "empty?" => Ok(Value::Bool(items.is_empty())),
        "any?" => Ok(Value::Bool(items.iter().any(Value::truthy))),
        "include?" => Ok(Value::Bool(
            args.first()
                .is_some_and(|a| items.iter().any(|i| equal(i, a))),
        )),
        "join" => {
            let sep = match args.first() {
                None | Some(Value::Nil) => "",
                Some(_) => str_arg(name, args.first())?,
            };
            fn flat(items: &[Value], out: &mut Vec<String>) {
                for item in items {
                    match item {
                        Value::Array(inner) => flat(inner, out),
                        other => out.push(other.to_s()),
                    }
                }
            }
            let mut parts = Vec::new();
            flat(&items, &mut parts);
            Ok(Value::Str(parts.join(sep)))
        }
        "reverse" => Ok(Value::Array(items.into_iter().rev().collect())),
        "uniq" => {
            let mut out: Vec<Value> = Vec::new();
            for item in items {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            Ok(Value::Array(out))
        }
        "compact" => Ok(Value::Array(
            items.into_iter().filter(|i| *i != Value::Nil).collect(),
        )),
        "sort" => {
            let mut items = items;
            if items.iter().all(|i| matches!(i, Value::Str(_))) {
                items.sort_by_key(Value::to_s);
            } else if items.iter().all(|i| matches!(i, Value::Int(_))) {
                items.sort_by_key(|i| match i {
                    Value::Int(n) => *n,
                    _ => 0,
                });
            } else {
                return Err("comparison of mixed values failed (`sort`)".to_string());
            }
            Ok(Value::Array(items))
        }
        "map" | "select" | "reject" => {
            let Some(Value::Str(method)) = args.first() else {
                return Err(format!("`{name}` takes a method name: `{name}(&:strip)`"));
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let result = call(item.clone(), method, &[])?;
                match name {
                    "map" => out.push(result),
                    "select" if result.truthy() => out.push(item),
                    "reject" if !result.truthy() => out.push(item),
                    _ => {}
                }
            }
            Ok(Value::Array(out))
        }
        _ => Err(undefined(name, &Value::Array(items))),
    }
}
