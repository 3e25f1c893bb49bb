//! A small writer for EC2's response XML.
//!
//! EC2 responses are simple: elements with text, nested elements, and lists
//! written as `<fooSet><item>…</item></fooSet>`. The writer escapes all text
//! and replaces characters XML 1.0 cannot carry, so user-supplied strings (tag
//! values, descriptions) can never break a document.

use std::fmt::Display;

pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub struct Xml {
    buf: String,
}

/// Appends `text` escaped for element content or attribute values.
pub fn escape_into(buf: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => buf.push_str("&amp;"),
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&apos;"),
            '\t' | '\n' | '\r' => buf.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => buf.push('\u{FFFD}'),
            c => buf.push(c),
        }
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

    /// `<tag>text</tag>`.
    pub fn leaf(&mut self, tag: &str, value: impl Display) {
        self.open(tag);
        let s = value.to_string();
        escape_into(&mut self.buf, &s);
        self.close(tag);
    }

    pub fn opt(&mut self, tag: &str, value: Option<impl Display>) {
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
    pub fn value(&mut self, tag: &str, v: impl Display) {
        self.node(tag, |x| x.leaf("value", v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
