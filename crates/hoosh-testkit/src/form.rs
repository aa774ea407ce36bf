//! Reading `multipart/form-data` bodies: the audio mocks parse uploads with
//! it, and the recorder keeps every part so tests can assert on exactly what
//! an adapter sent (field names, repeated fields, filenames, file bytes).

use bytes::Bytes;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

impl FormPart {
    /// The value of a text field (`None` when it is not UTF-8).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// Whether a `Content-Type` announces a multipart form.
pub fn is_multipart(content_type: &str) -> bool {
    content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data")
}

/// The parts of a `multipart/form-data` body, in order. The error is a
/// message fit for a 400.
pub async fn parse(content_type: &str, body: Bytes) -> Result<Vec<FormPart>, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| format!("invalid multipart form: {e}"))?;
    let source = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(source, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| format!("invalid multipart form: {e}"))? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(ToString::to_string);
        let data = field.bytes().await.map_err(|e| format!("invalid multipart form: {e}"))?;
        parts.push(FormPart { name, filename, content_type, data });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_repeated_fields_and_files() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
                    Content-Type: audio/wav\r\n\r\nRIFF\r\n\
                    --b\r\nContent-Disposition: form-data; name=\"g[]\"\r\n\r\nword\r\n\
                    --b\r\nContent-Disposition: form-data; name=\"g[]\"\r\n\r\nsegment\r\n--b--\r\n";
        let parts = parse("multipart/form-data; boundary=b", Bytes::from(body)).await.unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].filename.as_deref(), Some("a.wav"));
        assert_eq!(parts[0].content_type.as_deref(), Some("audio/wav"));
        assert_eq!(&parts[0].data[..], b"RIFF");
        assert_eq!(
            parts.iter().filter(|p| p.name == "g[]").filter_map(FormPart::text).collect::<Vec<_>>(),
            ["word", "segment"]
        );
        assert!(parse("multipart/form-data", Bytes::new()).await.is_err(), "no boundary");
        assert!(is_multipart("Multipart/Form-Data; boundary=x"));
    }
}
