//! A recorded span as rules see it: its final name, kind and attributes.

use super::record::SpanRecord;
use crate::rules::condition::AttrValue;
use crate::rules::SpanView;

pub struct RecordView<'a> {
    pub record: &'a SpanRecord,
    /// The rule set's attribute keys, by index.
    pub keys: &'a [String],
}

impl SpanView for RecordView<'_> {
    fn name(&self) -> &str {
        &self.record.name
    }

    fn kind(&self) -> Option<usize> {
        Some(usize::from(self.record.kind)).filter(|k| *k < super::record::KINDS)
    }

    fn is_root(&self) -> bool {
        self.record.parent.is_none()
    }

    fn attribute(&self, key: usize) -> Option<AttrValue<'_>> {
        self.record.attribute(self.keys.get(key)?).map(|value| value.as_attr())
    }
}
