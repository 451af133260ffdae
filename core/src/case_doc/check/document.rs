//! A whole case sent as one document (Automerge's document format, without its own
//! compression): read under bounds before Automerge parses it, then taken apart into the
//! changes it holds, which go through every check a pulled change goes through. A document
//! from a server is untrusted input like a change.

use automerge::Automerge;

use super::*;

/// Largest document accepted: a case at `CASE_OPS_MAX` operations saves to well under this.
pub const DOCUMENT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Changes one document may hold: a busy case holds a few hundred.
pub const DOCUMENT_CHANGES_MAX: usize = 10_000;
/// Values any one column may declare: every operation once, its successors a few times.
const COLUMN_VALUES_MAX: u64 = 4 * CASE_OPS_MAX as u64;

/// Automerge's operation kinds, as the action column numbers them. A case holds maps and text
/// only: objects made, scalars put (and characters inserted), values deleted.
const ACTION_MAKE_MAP: u64 = 0;
const ACTION_PUT: u64 = 1;
const ACTION_DELETE: u64 = 3;
const ACTION_MAKE_TEXT: u64 = 4;
/// The type of a value, in the low four bits of its metadata: a counter is never written.
const VALUE_TYPE_COUNTER: u64 = 8;

/// Column types, in the low three bits of a column's specification.
const TYPE_GROUP: u64 = 0;
const TYPE_BOOLEAN: u64 = 4;
const TYPE_STRING: u64 = 5;
const TYPE_VALUE_METADATA: u64 = 6;
const TYPE_VALUE: u64 = 7;
/// The operations' action column and value metadata column (ids 4 and 5).
const OPS_ACTION: u64 = (4 << 4) | 2;
const OPS_VALUE_METADATA: u64 = (5 << 4) | TYPE_VALUE_METADATA;

/// Whether raw bytes are an Automerge document chunk (a case sent whole), not a change.
pub fn is_document(raw: &[u8]) -> bool {
    raw.len() > 8 && raw[..4] == CHUNK_MAGIC && raw[8] == 0
}

/// Checks a document chunk's layout without inflating anything: one plain document chunk (type
/// 0), no DEFLATE-compressed column, every count bounded by the bytes that remain, no column
/// declaring more values than a case may hold, and only the operation kinds Suivi writes.
/// Runs before Automerge parses the bytes.
pub fn precheck_document(raw: &[u8]) -> Result<(), ChangeRefusal> {
    const CHUNK_TYPE_DOCUMENT: u8 = 0;
    if raw.len() > DOCUMENT_BYTES_MAX {
        return Err(ChangeRefusal::Malformed("document too large"));
    }
    if raw.len() < 9 || raw[..4] != CHUNK_MAGIC {
        return Err(ChangeRefusal::Malformed("not an Automerge chunk"));
    }
    if raw[8] != CHUNK_TYPE_DOCUMENT {
        return Err(ChangeRefusal::Malformed("not a document chunk"));
    }
    let mut r = Reader { bytes: raw, at: 9 };
    let body_len = r.uleb()?;
    // One chunk and nothing after it: Automerge would read trailing chunks as more changes.
    if body_len != (raw.len() - r.at) as u64 {
        return Err(ChangeRefusal::Malformed("chunk length"));
    }
    let actors = r.count(1)?;
    for _ in 0..actors {
        let len = r.count(1)?;
        r.skip(len)?;
    }
    let heads = r.count(32)?;
    r.skip(heads * 32)?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        let n = r.count(2)?;
        for _ in 0..n {
            let spec = r.uleb()?;
            if spec & COLUMN_DEFLATE != 0 {
                return Err(ChangeRefusal::Malformed("compressed column"));
            }
            let len = usize::try_from(r.uleb()?).unwrap_or(usize::MAX);
            columns.push((spec, len));
        }
    }
    // The change columns, then the operation columns; each must lie in the chunk.
    let mut at = r.at;
    for (spec, len) in columns {
        if len > raw.len() - at {
            return Err(ChangeRefusal::Malformed("column beyond the chunk"));
        }
        let data = &raw[at..at + len];
        at += len;
        check_column(spec, data)?;
    }
    Ok(())
}

/// Adds up a column's values without expanding its runs, so a few bytes cannot declare
/// millions of operations (or successors) for Automerge to allocate.
fn check_column(spec: u64, data: &[u8]) -> Result<(), ChangeRefusal> {
    let too_many = Err(ChangeRefusal::Malformed("too many operations"));
    match spec & 0b111 {
        TYPE_VALUE => Ok(()),
        TYPE_BOOLEAN => {
            // Alternating run lengths of false and true.
            let mut r = Reader { bytes: data, at: 0 };
            let mut total: u64 = 0;
            while r.at < data.len() {
                total = total.saturating_add(r.uleb()?);
            }
            if total > COLUMN_VALUES_MAX {
                return too_many;
            }
            Ok(())
        }
        TYPE_STRING => {
            if string_values(data)? > COLUMN_VALUES_MAX {
                return too_many;
            }
            Ok(())
        }
        kind => {
            let values = rle_values(data)?;
            let count = values.count;
            if count > COLUMN_VALUES_MAX || (kind == TYPE_GROUP && values.sum > COLUMN_VALUES_MAX) {
                return too_many;
            }
            if spec == OPS_ACTION
                && values.distinct.iter().any(|a| {
                    !matches!(
                        *a,
                        ACTION_MAKE_MAP | ACTION_PUT | ACTION_DELETE | ACTION_MAKE_TEXT
                    )
                })
            {
                return Err(ChangeRefusal::Malformed(
                    "an operation kind Suivi never writes",
                ));
            }
            if spec == OPS_VALUE_METADATA
                && values
                    .distinct
                    .iter()
                    .any(|m| m & 0xf == VALUE_TYPE_COUNTER)
            {
                return Err(ChangeRefusal::Malformed(
                    "an operation kind Suivi never writes",
                ));
            }
            Ok(())
        }
    }
}

/// What a run-length-encoded integer column holds: how many values, their sum (for a group
/// column, the entries of the columns it groups) and the distinct values seen.
struct RleValues {
    count: u64,
    sum: u64,
    distinct: std::collections::BTreeSet<u64>,
}

/// Reads an integer column's runs: a positive run repeats one value, a negative one lists
/// literal values, a zero one counts nulls. Delta columns read the same (their values are
/// signed; only the count matters for them).
fn rle_values(data: &[u8]) -> Result<RleValues, ChangeRefusal> {
    let mut r = Reader { bytes: data, at: 0 };
    let mut out = RleValues {
        count: 0,
        sum: 0,
        distinct: Default::default(),
    };
    let note = |out: &mut RleValues, times: u64, value: u64| {
        out.count = out.count.saturating_add(times);
        out.sum = out.sum.saturating_add(times.saturating_mul(value));
        // Only a few distinct values matter (actions, value types); cap what is kept.
        if out.distinct.len() < 64 {
            out.distinct.insert(value);
        }
    };
    while r.at < data.len() {
        let run = r.sleb_value()?;
        if run > 0 {
            let value = r.uleb()?;
            note(&mut out, run as u64, value);
        } else if run < 0 {
            let literals = run.unsigned_abs();
            if literals > (data.len() - r.at) as u64 {
                return Err(ChangeRefusal::Malformed("count beyond the chunk"));
            }
            for _ in 0..literals {
                let value = r.uleb()?;
                note(&mut out, 1, value);
            }
        } else {
            out.count = out.count.saturating_add(r.uleb()?);
        }
    }
    Ok(out)
}

/// Counts a string column's values: runs as an integer column's, each value a length and
/// that many bytes.
fn string_values(data: &[u8]) -> Result<u64, ChangeRefusal> {
    let mut r = Reader { bytes: data, at: 0 };
    let mut count: u64 = 0;
    let value = |r: &mut Reader<'_>| -> Result<(), ChangeRefusal> {
        let len = r.count(1)?;
        r.skip(len)
    };
    while r.at < data.len() {
        let run = r.sleb_value()?;
        if run > 0 {
            value(&mut r)?;
            count = count.saturating_add(run as u64);
        } else if run < 0 {
            let literals = run.unsigned_abs();
            if literals > (data.len() - r.at) as u64 {
                return Err(ChangeRefusal::Malformed("count beyond the chunk"));
            }
            for _ in 0..literals {
                value(&mut r)?;
            }
            count = count.saturating_add(literals);
        } else {
            count = count.saturating_add(r.uleb()?);
        }
    }
    Ok(count)
}

/// The changes a case's document holds, as raw change chunks in the order origins are listed
/// in: by actor id, then sequence number (both sides know it without any hash on the wire).
/// Bounded and checked before and after Automerge reads it; a panic inside Automerge is
/// contained.
pub fn changes_of_document(raw: &[u8]) -> Result<Vec<Vec<u8>>, ChangeRefusal> {
    precheck_document(raw)?;
    let doc = catch_unwind(|| Automerge::load(raw))
        .map_err(|_| ChangeRefusal::Malformed("the document reader panicked"))?
        .map_err(|_| ChangeRefusal::Malformed("the document does not load"))?;
    let mut changes = catch_unwind(AssertUnwindSafe(|| doc.get_changes(&[])))
        .map_err(|_| ChangeRefusal::Malformed("the document reader panicked"))?;
    if changes.len() > DOCUMENT_CHANGES_MAX {
        return Err(ChangeRefusal::Malformed("too many changes"));
    }
    changes.sort_by(|a, b| (a.actor_id(), a.seq()).cmp(&(b.actor_id(), b.seq())));
    let mut ops = 0;
    let mut out = Vec::with_capacity(changes.len());
    for change in &changes {
        ops += change.len();
        if change.len() > CHANGE_OPS_MAX || ops > CASE_OPS_MAX {
            return Err(ChangeRefusal::Malformed("too many operations"));
        }
        // Each change then goes through `parse_change` as any pulled change does, operation
        // kinds included; the precheck above already refused the kinds Suivi never writes.
        out.push(change.raw_bytes().to_vec());
    }
    Ok(out)
}

/// A case's changes as one document: `None` when they are not a whole history (a change
/// depends on one not among them). Also gives the order origins are listed in, as indices into
/// `raw` (by actor id, then sequence number, as [`changes_of_document`] returns them). Raw, a
/// small case's document is about its changes' size; what differs is what a message's
/// compression leaves of many of them (a change carries its dependencies' hashes and its actor,
/// which do not compress; a document holds each actor once and no hashes), so the server
/// weighs a whole page both ways.
pub fn document_of_changes(raw: &[Vec<u8>]) -> Option<(Vec<u8>, Vec<usize>)> {
    // Changes a server stores were checked when pushed: bounded again, not expanded again.
    let parsed: Vec<Change> = raw
        .iter()
        .map(|c| {
            precheck_change_chunk(c).ok()?;
            Change::from_bytes(c.clone()).ok()
        })
        .collect::<Option<_>>()?;
    let mut order: Vec<usize> = (0..parsed.len()).collect();
    order.sort_by(|&a, &b| {
        (parsed[a].actor_id(), parsed[a].seq()).cmp(&(parsed[b].actor_id(), parsed[b].seq()))
    });
    let mut doc = Automerge::new();
    catch_unwind(AssertUnwindSafe(|| doc.apply_changes(parsed)))
        .ok()?
        .ok()?;
    if !doc.get_missing_deps(&[]).is_empty() || doc.get_changes_meta(&[]).len() != raw.len() {
        return None;
    }
    Some((doc.save_nocompress(), order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::{FormRegistry, IDENTIFICATION};
    use crate::{CaseDoc, ChangeContext};

    fn case_changes() -> Vec<Vec<u8>> {
        let forms = FormRegistry::builtin();
        let ctx = ChangeContext::now("amina");
        let record: crate::forms::Record = serde_json::from_value(serde_json::json!({
            "child_first_name": "Awa", "child_last_name": "Koné", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso",
            "commune": "Kadiolo", "village": "Zégoua", "school_status": "never_enrolled",
            "works": false, "risk_level": "high", "consent_to_share": true
        }))
        .unwrap();
        let mut doc = CaseDoc::create(
            "c0ffee00c0ffee00c0ffee00c0ffee00",
            automerge::ActorId::from(vec![3u8; 16]),
            forms.latest(IDENTIFICATION).unwrap(),
            &record,
            &ctx,
        )
        .unwrap();
        let more: crate::forms::Record =
            serde_json::from_value(serde_json::json!({"village": "Kadiolo"})).unwrap();
        doc.edit_identification(&forms, &more, &ctx).unwrap();
        doc.changes_since(&[])
    }

    #[test]
    fn a_whole_history_travels_as_a_document_and_comes_back_change_for_change() {
        let changes = case_changes();
        let (document, order) = document_of_changes(&changes).expect("a whole history");
        let back = changes_of_document(&document).unwrap();
        assert_eq!(back.len(), changes.len());
        let hash = |c: &[u8]| parse_change(c).unwrap().hash();
        for (got, &sent) in back.iter().zip(&order) {
            assert_eq!(
                hash(got),
                hash(&changes[sent]),
                "the very change, in the order told"
            );
        }
    }

    #[test]
    fn a_part_of_a_history_stays_changes() {
        let changes = case_changes();
        assert!(document_of_changes(&changes[1..]).is_none());
    }

    #[test]
    fn a_hostile_document_is_refused_before_automerge_reads_it() {
        let changes = case_changes();
        let (document, _) = document_of_changes(&changes).unwrap();
        let refusal = |bytes: &[u8]| changes_of_document(bytes).unwrap_err().to_string();
        // A change where a document belongs, a deflated copy, trailing bytes, a truncation.
        assert!(refusal(&changes[0]).contains("not a document chunk"));
        // Automerge deflates a column past 256 bytes: a long narrative makes one.
        let notes: crate::forms::Record =
            serde_json::from_value(serde_json::json!({"notes": "Travaille au champ. ".repeat(80)}))
                .unwrap();
        let mut case = CaseDoc::load(&document, automerge::ActorId::from(vec![3u8; 16])).unwrap();
        case.edit_identification(
            &FormRegistry::builtin(),
            &notes,
            &ChangeContext::now("amina"),
        )
        .unwrap();
        let long = Automerge::load(&case.save()).unwrap();
        let mut deflated = long.save();
        assert!(
            deflated.len() < long.save_nocompress().len(),
            "a deflated column"
        );
        assert!(
            refusal(&deflated).contains("compressed column"),
            "{}",
            refusal(&deflated)
        );
        deflated.truncate(10);
        assert!(changes_of_document(&deflated).is_err());
        let mut trailing = document.clone();
        trailing.extend(&changes[0]);
        assert!(refusal(&trailing).contains("chunk length"));
        for cut in [9, 12, document.len() / 2, document.len() - 1] {
            assert!(
                changes_of_document(&document[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // Every byte flipped in turn: refused or read, never a panic or a huge allocation.
        for i in 9..document.len() {
            let mut bad = document.clone();
            bad[i] ^= 0x5a;
            let _ = changes_of_document(&bad);
        }
    }

    #[test]
    fn a_run_declaring_millions_of_operations_is_counted_not_expanded() {
        // One run of a billion copies of one action: four bytes.
        let mut column = Vec::new();
        leb(&mut column, 1_000_000_000, true);
        leb(&mut column, ACTION_PUT, false);
        assert!(check_column(OPS_ACTION, &column).is_err());
        let mut marks = Vec::new();
        leb(&mut marks, 1, true);
        leb(&mut marks, 7, false);
        assert!(check_column(OPS_ACTION, &marks)
            .unwrap_err()
            .to_string()
            .contains("never writes"));
        let mut counter = Vec::new();
        leb(&mut counter, 1, true);
        leb(&mut counter, (1 << 4) | VALUE_TYPE_COUNTER, false);
        assert!(check_column(OPS_VALUE_METADATA, &counter).is_err());
    }

    /// LEB128, signed or not (test data only).
    fn leb(out: &mut Vec<u8>, mut value: u64, signed: bool) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            let done = if signed {
                value == 0 && byte & 0x40 == 0
            } else {
                value == 0
            };
            out.push(if done { byte } else { byte | 0x80 });
            if done {
                return;
            }
        }
    }
}
