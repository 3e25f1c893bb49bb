//! Response pieces shared by several resources.

use strato_core::lifecycle::InstanceState;
use strato_core::tags::Tags;

use crate::xml::Xml;

pub fn tag_set(x: &mut Xml, tags: &Tags) {
    x.list("tagSet", tags.iter(), |x, (k, v)| {
        x.leaf("key", k);
        x.leaf("value", v);
    });
}

pub fn instance_state(x: &mut Xml, tag: &str, s: InstanceState) {
    x.node(tag, |x| {
        x.leaf("code", s.code());
        x.leaf("name", s.name());
    });
}

pub fn next_token(x: &mut Xml, token: Option<String>) {
    x.opt("nextToken", token);
}

pub fn return_true(x: &mut Xml) {
    x.bool("return", true);
}
