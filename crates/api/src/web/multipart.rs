//! `multipart/form-data` bodies (RFC 7578), as the one page form that uploads a file sends
//! them: its parts by name, with their bytes. Only what a browser sends is understood;
//! anything else is no form at all.

/// One part: the form field's name and its bytes (a file's contents, or a field's value).
pub(crate) struct Part<'a> {
    pub name: String,
    pub data: &'a [u8],
}

/// The parts of `body`, or `None` when it is not `multipart/form-data` with a boundary.
pub(crate) fn parse<'a>(content_type: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
    })?;
    if boundary.is_empty() || boundary.len() > 70 {
        return None;
    }
    let open = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut rest = body.strip_prefix(open.as_bytes())?;
    let mut parts = Vec::new();
    loop {
        // After a delimiter: "--" ends the body, CRLF starts a part.
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = memchr::memmem::find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let content = &rest[head_end + 4..];
        let end = finder.find(content)?;
        if let Some(name) = field_name(head) {
            parts.push(Part {
                name,
                data: &content[..end],
            });
        }
        rest = &content[end + delimiter.len()..];
    }
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"` header.
fn field_name(head: &str) -> Option<String> {
    let line = head.split("\r\n").find(|l| {
        l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let (_, value) = line.split_once(':')?;
    value.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=----WebKitFormBoundaryX1";

    #[test]
    fn a_browsers_upload_reads_as_its_fields() {
        let body = b"------WebKitFormBoundaryX1\r\n\
Content-Disposition: form-data; name=\"csrf\"\r\n\r\n\
tok\r\n\
------WebKitFormBoundaryX1\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.json\"\r\n\
Content-Type: application/json\r\n\r\n\
{\"a\":\r\n1}\r\n\
------WebKitFormBoundaryX1--\r\n";
        let parts = parse(CT, body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("csrf", &b"tok"[..])
        );
        assert_eq!(
            (parts[1].name.as_str(), parts[1].data),
            ("file", &b"{\"a\":\r\n1}"[..])
        );
    }

    #[test]
    fn anything_else_is_no_form() {
        assert!(parse("application/x-www-form-urlencoded", b"a=1").is_none());
        assert!(parse(CT, b"no boundary here").is_none());
        // Truncated: no closing delimiter.
        assert!(parse(CT, b"------WebKitFormBoundaryX1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxx").is_none());
    }
}
