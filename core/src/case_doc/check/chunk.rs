//! A raw change read under bounds before Automerge parses it: its chunk header, column sizes and operation kinds.

use super::*;

/// Checks the layout of a raw change chunk without inflating anything: a plain change chunk
/// (type 1), no DEFLATE-compressed column, every count bounded by the bytes that remain. Runs
/// before Automerge parses the bytes, whose inflation has no size cap.
pub fn precheck_change_chunk(raw: &[u8]) -> Result<(), ChangeRefusal> {
    const CHUNK_TYPE_CHANGE: u8 = 1;
    if raw.len() > CHANGE_BYTES_MAX {
        return Err(ChangeRefusal::Malformed("change too large"));
    }
    if raw.len() < 9 || raw[..4] != CHUNK_MAGIC {
        return Err(ChangeRefusal::Malformed("not an Automerge chunk"));
    }
    if raw[8] != CHUNK_TYPE_CHANGE {
        return Err(ChangeRefusal::Malformed(
            "not a plain change chunk (compressed or document)",
        ));
    }
    let mut r = Reader { bytes: raw, at: 9 };
    let body_len = r.uleb()?;
    if body_len != (raw.len() - r.at) as u64 {
        return Err(ChangeRefusal::Malformed("chunk length"));
    }
    let deps = r.count(32)?;
    r.skip(deps * 32)?;
    let actor = r.count(1)?;
    r.skip(actor)?;
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb_value()?; // time
    let message = r.uleb()?;
    if message > MESSAGE_BYTES_MAX {
        return Err(ChangeRefusal::Malformed("commit message too long"));
    }
    r.skip(message as usize)?;
    let others = r.count(1)?;
    for _ in 0..others {
        let len = r.count(1)?;
        r.skip(len)?;
    }
    let columns = r.count(2)?;
    let mut specs = Vec::with_capacity(columns);
    for _ in 0..columns {
        let spec = r.uleb()?;
        if spec & COLUMN_DEFLATE != 0 {
            return Err(ChangeRefusal::Malformed("compressed column"));
        }
        let len = r.uleb()?;
        specs.push((spec, usize::try_from(len).unwrap_or(usize::MAX)));
    }
    // Run-length encoding lets a few bytes declare millions of operations, or one operation
    // with millions of predecessors, which Automerge would allocate while parsing: add the
    // runs up first.
    let mut at = r.at;
    for (spec, len) in specs {
        if len > raw.len() - at {
            return Err(ChangeRefusal::Malformed("column beyond the chunk"));
        }
        let data = &raw[at..at + len];
        at += len;
        let limit = match spec {
            COLUMN_ACTION => CHANGE_OPS_MAX as u64,
            COLUMN_PRED_GROUP => CHANGE_PREDS_MAX,
            _ => continue,
        };
        if rle_total(data, spec == COLUMN_ACTION)? > limit {
            return Err(ChangeRefusal::Malformed("too many operations"));
        }
    }
    Ok(())
}

/// The bytes every Automerge chunk (change or document) starts with.
pub(super) const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The bit of a column's specification that says its data is DEFLATE-compressed.
pub(super) const COLUMN_DEFLATE: u64 = 0b1000;

/// The action column (its value count is the number of operations) and the predecessor-count
/// column (its sum is the number of predecessors), as Automerge's change format numbers them.
pub(super) const COLUMN_ACTION: u64 = (4 << 4) | 2;

pub(super) const COLUMN_PRED_GROUP: u64 = 7 << 4;

/// Predecessors over all operations of one change.
pub(super) const CHANGE_PREDS_MAX: u64 = 4 * CHANGE_OPS_MAX as u64;

/// Adds up an unsigned run-length-encoded column without expanding it: the number of values
/// (`count_values`) or their sum. Saturates, so a huge declared run is simply "too many".
pub(super) fn rle_total(data: &[u8], count_values: bool) -> Result<u64, ChangeRefusal> {
    let mut r = Reader { bytes: data, at: 0 };
    let mut total: u64 = 0;
    while r.at < data.len() {
        let run = r.sleb_value()?;
        if run > 0 {
            let value = r.uleb()?;
            let add = if count_values { 1 } else { value };
            total = total.saturating_add((run as u64).saturating_mul(add));
        } else if run < 0 {
            for _ in 0..run.unsigned_abs() {
                let value = r.uleb()?;
                total = total.saturating_add(if count_values { 1 } else { value });
            }
        } else {
            let nulls = r.uleb()?;
            if count_values {
                total = total.saturating_add(nulls);
            }
        }
    }
    Ok(total)
}

pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl Reader<'_> {
    /// A LEB128 number's bits and how many of them it wrote (a multiple of 7).
    pub(super) fn leb(&mut self) -> Result<(u64, u32), ChangeRefusal> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or(ChangeRefusal::Malformed("truncated chunk"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value, shift + 7));
            }
        }
        Err(ChangeRefusal::Malformed("varint too long"))
    }

    pub(super) fn uleb(&mut self) -> Result<u64, ChangeRefusal> {
        self.leb().map(|(value, _)| value)
    }

    pub(super) fn sleb_value(&mut self) -> Result<i64, ChangeRefusal> {
        let (value, bits) = self.leb()?;
        // The last byte's top data bit is the sign; fill the bits above it.
        let value = if bits < 64 && value & (1 << (bits - 1)) != 0 {
            value | (u64::MAX << bits)
        } else {
            value
        };
        Ok(value as i64)
    }

    /// A count of items of at least `item_bytes` each: bounded by the list limit and by the
    /// bytes that remain, so nothing is sized from an unchecked number.
    pub(super) fn count(&mut self, item_bytes: usize) -> Result<usize, ChangeRefusal> {
        let n = self.uleb()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > CHUNK_LIST_MAX && item_bytes > 1 {
            return Err(ChangeRefusal::Malformed("too many entries"));
        }
        if n.saturating_mul(item_bytes as u64) > left {
            return Err(ChangeRefusal::Malformed("count beyond the chunk"));
        }
        Ok(n as usize)
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<(), ChangeRefusal> {
        if n > self.bytes.len() - self.at {
            return Err(ChangeRefusal::Malformed("truncated chunk"));
        }
        self.at += n;
        Ok(())
    }
}

/// Parses a raw change after `precheck_change_chunk`, bounding its operation count.
pub fn parse_change(raw: &[u8]) -> Result<Change, ChangeRefusal> {
    precheck_change_chunk(raw)?;
    let change = catch_unwind(|| Change::from_bytes(raw.to_vec()))
        .map_err(|_| ChangeRefusal::Malformed("parser panicked"))?
        .map_err(|_| ChangeRefusal::Malformed("does not decode"))?;
    if change.len() > CHANGE_OPS_MAX {
        return Err(ChangeRefusal::Malformed("too many operations"));
    }
    check_operation_kinds(&change)?;
    Ok(change)
}

/// Refuses, before Automerge applies anything, every kind of operation Suivi never writes. A
/// case holds maps and text only: objects made, scalars put, values deleted, characters inserted
/// into text. Found by fuzzing: a text mark ended on a map key makes Automerge 0.12 panic while
/// applying and panic again while undoing, which aborts the process (`catch_unwind` cannot
/// contain a panic during unwinding), so a hostile device could abort the server.
pub(super) fn check_operation_kinds(change: &Change) -> Result<(), ChangeRefusal> {
    use automerge::legacy::{Key, OpType};
    let expanded = catch_unwind(AssertUnwindSafe(|| change.decode()))
        .map_err(|_| ChangeRefusal::Malformed("expanding the operations panicked"))?;
    for op in &expanded.operations {
        match &op.action {
            OpType::Make(ObjType::Map | ObjType::Text) | OpType::Delete => {}
            OpType::Put(value) if !matches!(value, ScalarValue::Counter(_)) => {}
            OpType::MarkBegin(_) | OpType::MarkEnd(_) => {
                return Err(ChangeRefusal::Malformed("text marks"))
            }
            _ => {
                return Err(ChangeRefusal::Malformed(
                    "an operation kind Suivi never writes",
                ))
            }
        }
        if op.insert && matches!(op.key, Key::Map(_)) {
            return Err(ChangeRefusal::Malformed("an insertion at a map key"));
        }
    }
    Ok(())
}
