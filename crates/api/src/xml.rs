//! A small writer for EC2's response XML.
//!
//! EC2 responses are simple: elements with text, nested elements, and lists
//! written as `<fooSet><item>…</item></fooSet>`. The writer escapes all text
//! and replaces characters XML 1.0 cannot carry, so user-supplied strings (tag
//! values, descriptions) can never break a document.

use std::fmt::{Display, Write};
use std::net::Ipv4Addr;

/// A value that can be written as element text. User-supplied strings are
/// escaped; values whose form Strato controls (ids, numbers, addresses,
/// timestamps) are written as they are, which is most of a large response.
pub trait XmlValue {
    fn write_xml(&self, buf: &mut String);
}

impl XmlValue for str {
    fn write_xml(&self, buf: &mut String) {
        escape_into(buf, self);
    }
}

impl XmlValue for String {
    fn write_xml(&self, buf: &mut String) {
        escape_into(buf, self);
    }
}

impl<T: XmlValue + ?Sized> XmlValue for &T {
    fn write_xml(&self, buf: &mut String) {
        (**self).write_xml(buf);
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl XmlValue for $t {
            fn write_xml(&self, buf: &mut String) {
                let _ = write!(buf, "{self}");
            }
        }
    )*};
}
numbers!(u8, u16, u32, u64, usize, i32, i64, f64);

impl XmlValue for Ipv4Addr {
    fn write_xml(&self, buf: &mut String) {
        let [a, b, c, d] = self.octets();
        for (i, o) in [a, b, c, d].iter().enumerate() {
            if i > 0 {
                buf.push('.');
            }
            let o = *o;
            if o >= 100 {
                buf.push((b'0' + o / 100) as char);
            }
            if o >= 10 {
                buf.push((b'0' + (o / 10) % 10) as char);
            }
            buf.push((b'0' + o % 10) as char);
        }
    }
}

/// Formats through `Display` without escaping: for values built here, in a
/// known alphabet.
macro_rules! trusted_display {
    ($($t:ty),*) => {$(
        impl XmlValue for $t {
            fn write_xml(&self, buf: &mut String) {
                let _ = write!(buf, "{self}");
            }
        }
    )*};
}
trusted_display!(strato_core::time::Iso8601, strato_core::cidr::Ipv4Cidr);

/// Ids are checked on the way in and made of a prefix and hex digits.
macro_rules! ids {
    ($($t:ident),*) => {$(
        impl XmlValue for strato_core::ids::$t {
            fn write_xml(&self, buf: &mut String) {
                buf.push_str(self.as_str());
            }
        }
    )*};
}
ids!(InstanceId, ReservationId, ImageId, SnapshotId, KeyPairId, VpcId, SubnetId, SecurityGroupId, SecurityGroupRuleId,
     RouteTableId, RouteTableAssociationId, InternetGatewayId, AllocationId, AssociationId, NetworkInterfaceId,
     AttachmentId, VolumeId, DhcpOptionsId, NetworkAclId, AccountId, Region);

pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub struct Xml {
    buf: String,
}

/// Does this byte start something that must not be copied as it is? The
/// five markup characters, control characters other than tab, newline and
/// carriage return, and 0xEF (which may begin U+FFFE or U+FFFF).
const fn special(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0xEF) || (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r')
}

const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = special(i as u8);
        i += 1;
    }
    t
};

/// Appends `text` escaped for element content or attribute values. Runs of
/// ordinary text are copied whole; only the rare special byte is looked at.
pub fn escape_into(buf: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i..].iter().position(|&b| SPECIAL[b as usize]) {
            Some(n) => i += n,
            None => break,
        }
        // `i` is at an ASCII byte or at the lead byte 0xEF, both char boundaries.
        buf.push_str(&text[start..i]);
        let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
        match c {
            '&' => buf.push_str("&amp;"),
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&apos;"),
            '\u{FFFE}' | '\u{FFFF}' => buf.push('\u{FFFD}'),
            c if (c as u32) < 0x20 => buf.push('\u{FFFD}'),
            c => buf.push(c),
        }
        i += c.len_utf8();
        start = i;
    }
    buf.push_str(&text[start..]);
}

/// A `fmt::Write` that escapes what is written through it, so values are
/// formatted straight into the document without an intermediate `String`.
struct Escaper<'a>(&'a mut String);

impl std::fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    escape_into(&mut s, text);
    s
}

impl Xml {
    /// Starts `<{action}Response xmlns=…><requestId>…</requestId>`.
    pub fn response(action: &str, request_id: &str) -> Xml {
        let mut x = Xml { buf: String::with_capacity(1024) };
        x.buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        x.buf.push_str(action);
        x.buf.push_str("Response xmlns=\"");
        x.buf.push_str(NAMESPACE);
        x.buf.push_str("\">");
        x.leaf("requestId", request_id);
        x
    }

    /// A writer for a piece of a document, to be cached and reused.
    pub fn fragment() -> Xml {
        Xml { buf: String::with_capacity(4096) }
    }

    pub fn into_string(self) -> String {
        self.buf
    }

    /// Appends XML written earlier by this writer.
    pub fn raw(&mut self, xml: &str) {
        self.buf.push_str(xml);
    }

    pub fn finish(mut self, action: &str) -> String {
        self.buf.push_str("</");
        self.buf.push_str(action);
        self.buf.push_str("Response>");
        self.buf
    }

    pub fn open(&mut self, tag: &str) {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
    }

    pub fn close(&mut self, tag: &str) {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
    }

    /// `<tag>value</tag>`.
    pub fn leaf(&mut self, tag: &str, value: impl XmlValue) {
        self.open(tag);
        value.write_xml(&mut self.buf);
        self.close(tag);
    }

    /// `<tag>…</tag>` for any `Display` value, escaped.
    pub fn display(&mut self, tag: &str, value: impl Display) {
        self.open(tag);
        let _ = Escaper(&mut self.buf).write_fmt(format_args!("{value}"));
        self.close(tag);
    }

    /// Reserves room for a document of about `bytes`.
    pub fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    pub fn opt(&mut self, tag: &str, value: Option<impl XmlValue>) {
        if let Some(v) = value {
            self.leaf(tag, v);
        }
    }

    pub fn bool(&mut self, tag: &str, v: bool) {
        self.leaf(tag, if v { "true" } else { "false" });
    }

    /// `<tag>…</tag>` around whatever `body` writes.
    pub fn node(&mut self, tag: &str, body: impl FnOnce(&mut Xml)) {
        self.open(tag);
        body(self);
        self.close(tag);
    }

    /// `<tag><item>…</item>…</tag>`; an empty list is written as `<tag/>`.
    pub fn list<T>(&mut self, tag: &str, items: impl IntoIterator<Item = T>, mut each: impl FnMut(&mut Xml, T)) {
        let mut iter = items.into_iter().peekable();
        if iter.peek().is_none() {
            self.buf.push('<');
            self.buf.push_str(tag);
            self.buf.push_str("/>");
            return;
        }
        self.open(tag);
        for item in iter {
            self.open("item");
            each(self, item);
            self.close("item");
        }
        self.close(tag);
    }

    /// `<value>…</value>` wrapped in `tag`, the attribute-value shape.
    pub fn value(&mut self, tag: &str, v: impl XmlValue) {
        self.node(tag, |x| x.leaf("value", v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_text_and_replaces_what_xml_cannot_carry() {
        assert_eq!(escape("plain text, ünïcödé ✓"), "plain text, ünïcödé ✓");
        assert_eq!(escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
        assert_eq!(escape("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
        assert_eq!(escape("\u{0}\u{1f}\u{FFFE}\u{FFFF}\u{FFFD}\u{EFFF}"), "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{EFFF}");
    }

    #[test]
    fn documents_are_well_formed_and_escaped() {
        let mut x = Xml::response("DescribeTags", "req-1");
        x.list("tagSet", ["a<b", "c&d\u{1}"], |x, v| x.leaf("value", v));
        x.list("emptySet", Vec::<u8>::new(), |_, _| {});
        let s = x.finish("DescribeTags");
        assert_eq!(
            s,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeTagsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId><tagSet><item><value>a&lt;b</value></item><item><value>c&amp;d\u{FFFD}</value></item></tagSet><emptySet/></DescribeTagsResponse>"
        );
    }
}
