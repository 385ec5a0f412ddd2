//! Attribute values as a recorded span holds them: what OpenTelemetry's
//! attribute cleaning leaves (None, booleans, integers, floats, strings,
//! bytes, and tuples and mappings of those), in tagged bytes.

use super::wire::{Reader, Writer};
use crate::rules::condition::AttrValue;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits, in decimal (Python integers are unbounded).
    BigInt(String),
    Float(f64),
    Str(String),
    /// A string Python holds with lone surrogates: its `surrogatepass` UTF-8 bytes.
    Surrogates(Vec<u8>),
    Bytes(Vec<u8>),
    Seq(Vec<Value>),
    Map(Vec<(String, Value)>),
}

const NONE: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const BIG_INT: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const SURROGATES: u8 = 7;
const BYTES: u8 = 8;
const SEQ: u8 = 9;
const MAP: u8 = 10;

/// Nesting read back at most (values nest as deep as the cleaner let them; a
/// corrupted record must not recurse without end).
const MAX_DEPTH: usize = 64;

impl Value {
    pub fn encode(&self, out: &mut Writer) {
        match self {
            Value::None => out.byte(NONE),
            Value::Bool(false) => out.byte(FALSE),
            Value::Bool(true) => out.byte(TRUE),
            Value::Int(i) => {
                out.byte(INT);
                out.signed(*i);
            }
            Value::BigInt(text) => {
                out.byte(BIG_INT);
                out.text(text);
            }
            Value::Float(f) => {
                out.byte(FLOAT);
                out.u64_fixed(f.to_bits());
            }
            Value::Str(text) => {
                out.byte(STR);
                out.text(text);
            }
            Value::Surrogates(bytes) => {
                out.byte(SURROGATES);
                out.bytes(bytes);
            }
            Value::Bytes(bytes) => {
                out.byte(BYTES);
                out.bytes(bytes);
            }
            Value::Seq(items) => {
                out.byte(SEQ);
                out.unsigned(items.len() as u64);
                for item in items {
                    item.encode(out);
                }
            }
            Value::Map(entries) => {
                out.byte(MAP);
                out.unsigned(entries.len() as u64);
                for (key, value) in entries {
                    out.text(key);
                    value.encode(out);
                }
            }
        }
    }

    pub fn decode(input: &mut Reader<'_>) -> Option<Value> {
        Value::decode_at(input, 0)
    }

    fn decode_at(input: &mut Reader<'_>, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        Some(match input.byte()? {
            NONE => Value::None,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(input.signed()?),
            BIG_INT => Value::BigInt(input.text()?),
            FLOAT => Value::Float(f64::from_bits(input.u64_fixed()?)),
            STR => Value::Str(input.text()?),
            SURROGATES => Value::Surrogates(input.bytes()?),
            BYTES => Value::Bytes(input.bytes()?),
            SEQ => {
                let count = input.count()?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(Value::decode_at(input, depth + 1)?);
                }
                Value::Seq(items)
            }
            MAP => {
                let count = input.count()?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = input.text()?;
                    entries.push((key, Value::decode_at(input, depth + 1)?));
                }
                Value::Map(entries)
            }
            _ => return None,
        })
    }

    /// The value as rules compare it (sequences and the rest are `Other`).
    pub fn as_attr(&self) -> AttrValue<'_> {
        match self {
            Value::Str(text) => AttrValue::Str(text),
            Value::Int(i) => AttrValue::Int(*i),
            Value::Float(f) => AttrValue::Float(*f),
            Value::Bool(b) => AttrValue::Bool(*b),
            _ => AttrValue::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let value = Value::Map(vec![
            ("a".into(), Value::Seq(vec![Value::Int(-5), Value::Float(1.5), Value::None, Value::Bool(true), Value::Bool(false)])),
            ("b".into(), Value::Bytes(vec![0, 255])),
            ("c".into(), Value::BigInt("123456789012345678901234567890".into())),
            ("d".into(), Value::Str("héllo".into())),
            ("e".into(), Value::Surrogates(vec![0xed, 0xa0, 0x80])),
            ("f".into(), Value::Int(i64::MIN)),
        ]);
        let mut out = Writer::default();
        value.encode(&mut out);
        let bytes = out.finish();
        assert_eq!(Value::decode(&mut Reader::new(&bytes)), Some(value));
    }

    #[test]
    fn corrupted_bytes_read_as_nothing() {
        assert_eq!(Value::decode(&mut Reader::new(&[99])), None);
        assert_eq!(Value::decode(&mut Reader::new(&[SEQ, 5, NONE])), None, "fewer items than announced");
        let deep = [SEQ, 1].repeat(100);
        assert_eq!(Value::decode(&mut Reader::new(&deep)), None, "nesting is bounded");
    }
}
