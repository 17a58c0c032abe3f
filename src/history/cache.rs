//! The history cache: JSON lines, appended to as the branch grows.
//!
//! The first line names the format and the flags folder. Then come segments: the events of the
//! commits one run read, one JSON object a line, oldest first, closed by a trailer line naming
//! the commit the segment runs up to (`head`) and the one it continues (`base`). A reader
//! accepts a segment only when its base is the head of the segments accepted before it, so a
//! torn write (a crash mid-append) or two runs appending the same commits leave a cache that
//! reads as the longest valid chain. A run that finds new commits appends one segment; a
//! rewritten history replaces the file with the header alone, then appends its segment. Events
//! are written as they are made, a run of commits at a time, and the trailer last.
//!
//! Reading for one flag skips other flags' lines by their prefix without parsing them.

use std::io::{Seek as _, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Event;

/// The format's version; a cache of another version is ignored. Bump it whenever events change
/// shape or wording.
const VERSION: u32 = 4;

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    flags_path: String,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    head: String,
    base: Option<String>,
    head_time: i64,
}

/// What a cache file holds.
pub(super) struct Cached {
    /// The commit the history runs up to.
    pub(super) head: String,
    /// Its time.
    pub(super) head_time: i64,
    /// The events (only those of the flag asked for, when one was), newest first.
    pub(super) events: Vec<Event>,
    /// How many bytes of the file form the valid chain: an append starts there.
    valid_len: u64,
}

/// Reads the cache at `path` for the flags folder `flags_path`; with `only`, keeps only that
/// flag's events. `None` when there is no cache or it was written for something else; an error
/// when the file is a link, larger than [`MAX_LOG_BYTES`](crate::owned_file::MAX_LOG_BYTES) or
/// cannot be read.
pub(super) fn read(path: &Path, flags_path: &str, only: Option<&str>) -> anyhow::Result<Option<Cached>> {
    let Some(bytes) = crate::owned_file::read(path, crate::owned_file::MAX_LOG_BYTES)? else {
        return Ok(None);
    };
    Ok(parse(&bytes, flags_path, only))
}

/// The longest valid chain of `bytes`, or `None`.
fn parse(bytes: &[u8], flags_path: &str, only: Option<&str>) -> Option<Cached> {
    let mut lines = LineIter { bytes, offset: 0 };
    let (first, _) = lines.next()?;
    let header: Header = serde_json::from_slice(first).ok()?;
    if header.version != VERSION || header.flags_path != flags_path {
        return None;
    }
    let prefix = only.map(|name| format!("{{\"flag\":{}", serde_json::to_string(name).unwrap_or_default()));
    let mut accepted: Option<(String, i64, u64)> = None;
    let mut events: Vec<Event> = Vec::new();
    let mut pending: Vec<Event> = Vec::new();
    let mut broken = false;
    for (line, end) in lines {
        if line.starts_with(b"{\"head\":") {
            let trailer: Option<Trailer> = serde_json::from_slice(line).ok();
            let current = accepted.as_ref().map(|(head, _, _)| head.as_str());
            match trailer {
                Some(trailer) if !broken && trailer.base.as_deref() == current => {
                    events.append(&mut pending);
                    accepted = Some((trailer.head, trailer.head_time, end as u64));
                }
                _ => pending.clear(),
            }
            broken = false;
            continue;
        }
        if let Some(prefix) = &prefix
            && !line.starts_with(prefix.as_bytes())
        {
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(event) => pending.push(event),
            Err(_) => broken = true,
        }
    }
    let (head, head_time, valid_len) = accepted?;
    events.reverse();
    Some(Cached {
        head,
        head_time,
        events,
        valid_len,
    })
}

/// Complete lines with the offset just past each; a last line with no newline is torn and left
/// out.
struct LineIter<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (&'a [u8], usize);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.bytes[self.offset..];
        let length = rest.iter().position(|byte| *byte == b'\n')?;
        let line = &rest[..length];
        self.offset += length + 1;
        Some((line, self.offset))
    }
}

/// A segment being written: the events of one run, appended as they are made, then the trailer
/// that makes them count. Until [`Segment::finish`] writes the trailer, a reader takes the file
/// as it was before (an append) or as empty (a new file).
pub(super) struct Segment {
    file: std::io::BufWriter<std::fs::File>,
    base: Option<String>,
}

impl Segment {
    /// Replaces the cache with one that holds only the header, and starts the whole history.
    pub(super) fn create(path: &Path, flags_path: &str) -> anyhow::Result<Segment> {
        let mut header = serde_json::to_vec(&Header {
            version: VERSION,
            flags_path: flags_path.to_string(),
        })?;
        header.push(b'\n');
        // No fsync: a cache lost in a crash is rebuilt.
        crate::owned_file::replace(path, &header, false)?;
        Segment::open(path, header.len() as u64, None)
    }

    /// Starts the events of the commits after `cached.head`.
    pub(super) fn append(path: &Path, cached: &Cached) -> anyhow::Result<Segment> {
        Segment::open(path, cached.valid_len, Some(cached.head.clone()))
    }

    fn open(path: &Path, valid_len: u64, base: Option<String>) -> anyhow::Result<Segment> {
        let mut file = crate::owned_file::open(path, std::fs::OpenOptions::new().write(true))?;
        // One writer at a time, until the segment is finished; whatever follows the valid chain
        // (a torn or rival segment) goes.
        file.lock()?;
        file.set_len(valid_len)?;
        file.seek(std::io::SeekFrom::End(0))?;
        Ok(Segment {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            base,
        })
    }

    /// Writes `events` (each commit's, newest first) oldest first; the events of later commits
    /// follow.
    pub(super) fn write(&mut self, events: &[Vec<Event>]) -> anyhow::Result<()> {
        for event in events.iter().rev().flat_map(|commit| commit.iter().rev()) {
            serde_json::to_writer(&mut self.file, event)?;
            self.file.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes the trailer: the segment runs up to `head`.
    pub(super) fn finish(mut self, head: &str, head_time: i64) -> anyhow::Result<()> {
        serde_json::to_writer(
            &mut self.file,
            &Trailer {
                head: head.to_string(),
                base: self.base.take(),
                head_time,
            },
        )?;
        self.file.write_all(b"\n")?;
        self.file.flush()?;
        Ok(())
    }
}
