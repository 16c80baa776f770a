//! Pages the proxy answers itself: maintenance (503 with the `stop --message`), not found,
//! bad gateway, gateway timeout.

use http::{header, Response, StatusCode};

use super::body::ProxyBody;

/// A small HTML page for `status`, showing `message` when not empty.
pub fn page(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>", escape(message))
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{} {title}</h1>{detail}</body></html>\n",
        status.as_u16()
    );
    let mut resp = Response::new(ProxyBody::text(html));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// HTML-escape text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_page_escapes_the_message() {
        assert_eq!(escape("<b>a&b</b>"), "&lt;b&gt;a&amp;b&lt;/b&gt;");
        let resp = page(StatusCode::SERVICE_UNAVAILABLE, "Back soon");
        assert_eq!(resp.status(), 503);
    }
}
