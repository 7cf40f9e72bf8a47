//! What an attachment (a document or image on a record, issue 19) may be: the types
//! allowed, the size limit, and the check that the declared type is what the bytes are.
//!
//! The declared `Content-Type` is checked against the file's first bytes before anything
//! is stored: PDF starts with `%PDF-`, DICOM (Part 10) has `DICM` at offset 128, JPEG
//! `FF D8 FF`, PNG its 8-byte signature, HEIC an ISO BMFF `ftyp` box naming a HEIC brand.
//! How a type is served back: [`AttachmentPolicy::inline`] says whether a browser may show
//! it in place; anything else (HTML, SVG, XML, …) goes as `Content-Disposition:
//! attachment`, so an uploaded file never runs as active content.

use crate::{Error, Result};

/// How many leading bytes [`AttachmentPolicy::check`] needs (DICOM's magic ends at 132).
pub const SNIFF_LEN: usize = 132;

/// Default size limit: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// A type the checks know: its media type and how its bytes begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// `application/pdf`
    Pdf,
    /// `application/dicom`
    Dicom,
    /// `image/jpeg`
    Jpeg,
    /// `image/png`
    Png,
    /// `image/heic`
    Heic,
}

impl Known {
    /// Every known type.
    pub const ALL: [Known; 5] = [Self::Pdf, Self::Dicom, Self::Jpeg, Self::Png, Self::Heic];

    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Dicom => "application/dicom",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Heic => "image/heic",
        }
    }

    /// The known type of `media_type` (parameters and case ignored).
    pub fn of(media_type: &str) -> Option<Self> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Self::ALL.into_iter().find(|k| k.media_type() == essence)
    }

    /// Whether `head` (the file's first bytes, at least [`SNIFF_LEN`] or the whole
    /// file) begins as this type does.
    pub fn matches(self, head: &[u8]) -> bool {
        match self {
            Self::Pdf => head.starts_with(b"%PDF-"),
            Self::Dicom => head.get(128..132) == Some(b"DICM"),
            Self::Jpeg => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            Self::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            Self::Heic => heic_brand(head),
        }
    }
}

/// An ISO BMFF file whose `ftyp` box names a HEIC brand (major or compatible).
fn heic_brand(head: &[u8]) -> bool {
    const BRANDS: [&[u8; 4]; 6] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];
    if head.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let Some(size) = head
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    let end = (size as usize).min(head.len());
    if end < 16 {
        return false;
    }
    // Major brand at 8..12, minor version at 12..16, compatible brands after.
    std::iter::once(&head[8..12])
        .chain(head[16..end].chunks_exact(4))
        .any(|brand| BRANDS.iter().any(|b| b.as_slice() == brand))
}

/// Which types may be attached and how big (configurable; [`Default`]: every known type,
/// 2 GiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// The types allowed.
    pub allowed: Vec<Known>,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            allowed: Known::ALL.to_vec(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl AttachmentPolicy {
    /// Checks an upload before anything is stored: the declared type is allowed, the
    /// declared length (if known) within the limit, and `head` — the first
    /// [`SNIFF_LEN`] bytes, or the whole file if shorter — is of that type. Errors name
    /// the field (`content_type` or `body`) and never carry the bytes.
    pub fn check(&self, declared: &str, len: Option<u64>, head: &[u8]) -> Result<Known> {
        let known = self.check_declared(declared, len)?;
        Self::check_head(known, head)?;
        Ok(known)
    }

    /// The part of [`check`](Self::check) that needs no bytes: the type allowed, the
    /// declared length within the limit.
    pub fn check_declared(&self, declared: &str, len: Option<u64>) -> Result<Known> {
        let allowed: Vec<&str> = self.allowed.iter().map(|k| k.media_type()).collect();
        let known = Known::of(declared)
            .filter(|k| self.allowed.contains(k))
            .ok_or_else(|| Error::InvalidInput {
                field: "content_type",
                message: format!("not an allowed type; allowed: {}", allowed.join(", ")),
            })?;
        if let Some(len) = len {
            self.check_len(len)?;
        }
        Ok(known)
    }

    /// The part of [`check`](Self::check) on the bytes: `head` (the first [`SNIFF_LEN`]
    /// bytes, or the whole file if shorter) is of type `known`.
    pub fn check_head(known: Known, head: &[u8]) -> Result<()> {
        if !known.matches(head) {
            return Err(Error::InvalidInput {
                field: "body",
                message: format!(
                    "the file is not {}: its first bytes say otherwise",
                    known.media_type()
                ),
            });
        }
        Ok(())
    }

    /// [`Error::InvalidInput`] on `body` when `len` bytes is over the limit (a stream
    /// checks as it goes, since its length may not be declared).
    pub fn check_len(&self, len: u64) -> Result<()> {
        if len > self.max_bytes {
            return Err(Error::AttachmentTooLarge {
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Whether a stored type may be shown in the browser in place (`Content-Disposition:
    /// inline`): the images and PDF the checks above admit. Anything else — HTML, SVG,
    /// XML, an unknown type — is served as a download.
    pub fn inline(content_type: &str) -> bool {
        matches!(
            Known::of(content_type),
            Some(Known::Pdf | Known::Jpeg | Known::Png)
        )
    }
}

/// An HTTP `Range: bytes=…` request for one range (RFC 9110 §14.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-` or `bytes=first-last` (`last` inclusive).
    From {
        /// The first byte.
        first: u64,
        /// The last byte, inclusive (`None`: to the end).
        last: Option<u64>,
    },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header value of one byte range; `None` for anything else (several
    /// ranges, another unit, a malformed one), which a server answers with the whole file.
    pub fn parse(value: &str) -> Option<Self> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let num = |s: &str| -> Option<u64> {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        if a.trim().is_empty() {
            return num(b).map(Self::Suffix);
        }
        let first = num(a)?;
        let last = if b.trim().is_empty() {
            None
        } else {
            Some(num(b)?)
        };
        if last.is_some_and(|l| l < first) {
            return None;
        }
        Some(Self::From { first, last })
    }

    /// The bytes `[start, end)` of a `size`-byte file it asks for; `None` when none of them
    /// exists (416 Range Not Satisfiable).
    pub fn resolve(self, size: u64) -> Option<std::ops::Range<u64>> {
        match self {
            Self::From { first, .. } if first >= size => None,
            Self::From { first, last } => {
                Some(first..last.map_or(size, |l| l.saturating_add(1).min(size)))
            }
            Self::Suffix(0) => None,
            Self::Suffix(n) => Some(size.saturating_sub(n)..size).filter(|r| !r.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dicom() -> Vec<u8> {
        let mut d = vec![0u8; 128];
        d.extend_from_slice(b"DICM\x02\x00\x00\x00");
        d
    }

    fn heic(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len();
        let mut h = (size as u32).to_be_bytes().to_vec();
        h.extend_from_slice(b"ftyp");
        h.extend_from_slice(major);
        h.extend_from_slice(&[0, 0, 0, 0]);
        for c in compatible {
            h.extend_from_slice(*c);
        }
        h.extend_from_slice(&[0; 64]);
        h
    }

    #[test]
    fn each_type_is_known_by_its_first_bytes_and_by_nothing_else() {
        let samples: [(Known, Vec<u8>); 5] = [
            (Known::Pdf, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec()),
            (Known::Dicom, dicom()),
            (
                Known::Jpeg,
                vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F'],
            ),
            (Known::Png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
            (Known::Heic, heic(b"mif1", &[b"mif1", b"heic"])),
        ];
        let policy = AttachmentPolicy::default();
        for (known, bytes) in &samples {
            assert_eq!(
                policy.check(known.media_type(), Some(10), bytes).unwrap(),
                *known
            );
            for (other, _) in samples.iter().filter(|(o, _)| o != known) {
                let e = policy.check(other.media_type(), None, bytes).unwrap_err();
                assert!(
                    matches!(e, Error::InvalidInput { field: "body", .. }),
                    "{known:?} bytes declared {other:?}: {e}"
                );
            }
        }
        assert!(Known::Heic.matches(&heic(b"heic", &[])));
        assert!(!Known::Heic.matches(&heic(b"isom", &[b"mp41"])), "an MP4");
        assert!(!Known::Dicom.matches(&dicom()[..131]), "too short");
    }

    #[test]
    fn the_policy_refuses_types_and_sizes_it_does_not_allow() {
        let pdf = b"%PDF-1.4 ...";
        let policy = AttachmentPolicy {
            allowed: vec![Known::Pdf],
            max_bytes: 1000,
        };
        assert!(
            policy
                .check("application/PDF; charset=binary", Some(1000), pdf)
                .is_ok()
        );
        for declared in ["image/png", "text/html", "image/svg+xml", ""] {
            let e = policy.check(declared, None, pdf).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidInput {
                        field: "content_type",
                        ..
                    }
                ),
                "{declared}: {e}"
            );
        }
        let e = policy
            .check("application/pdf", Some(1001), pdf)
            .unwrap_err();
        assert!(matches!(e, Error::AttachmentTooLarge { max: 1000 }));
        assert!(policy.check_len(1000).is_ok() && policy.check_len(1001).is_err());
        assert_eq!(
            AttachmentPolicy::default().max_bytes,
            2 * 1024 * 1024 * 1024
        );
    }

    #[test]
    fn one_byte_range_parses_and_resolves_against_the_size() {
        let r = |v: &str| ByteRange::parse(v);
        assert_eq!(r("bytes=0-99").unwrap().resolve(1000), Some(0..100));
        assert_eq!(r("bytes=900-").unwrap().resolve(1000), Some(900..1000));
        assert_eq!(r("bytes=900-5000").unwrap().resolve(1000), Some(900..1000));
        assert_eq!(r("bytes=-100").unwrap().resolve(1000), Some(900..1000));
        assert_eq!(r("bytes=-5000").unwrap().resolve(1000), Some(0..1000));
        assert_eq!(
            r("bytes=1000-").unwrap().resolve(1000),
            None,
            "past the end"
        );
        assert_eq!(r("bytes=-0").unwrap().resolve(1000), None);
        assert_eq!(r("bytes=0-").unwrap().resolve(0), None, "an empty file");
        for bad in [
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "0-1",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_images_and_pdf_are_shown_in_place() {
        for t in ["application/pdf", "image/jpeg", "image/png; q=1"] {
            assert!(AttachmentPolicy::inline(t), "{t}");
        }
        for t in [
            "text/html",
            "image/svg+xml",
            "application/xml",
            "text/xml",
            "application/dicom",
            "image/heic",
            "application/octet-stream",
        ] {
            assert!(!AttachmentPolicy::inline(t), "{t}");
        }
    }
}
