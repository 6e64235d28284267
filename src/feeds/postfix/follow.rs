//! Reading log files: whole files once (plain, `.gz`, standard input), or one file followed as
//! it grows and rotates, its position saved in the database with the events it gave.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{Reader, BATCH};
use crate::db::DbConn;
use crate::store::feeds::{self as store, LogPosition};

/// Reads whole files (plain or `.gz`, or `-` for standard input) once, from the start.
pub fn read_files(conn: &mut DbConn, reader: &mut Reader, paths: &[PathBuf]) -> anyhow::Result<()> {
    for path in paths {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            let file = File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            if is_gzip(path) {
                Box::new(flate2::read::MultiGzDecoder::new(file))
            } else {
                Box::new(file)
            }
        };
        let mut lines = BufReader::new(input);
        let mut buf = Vec::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            if lines.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            n += 1;
            let line = String::from_utf8_lossy(&buf);
            reader.line(conn, &line, &|| format!("{}:{n}", path.display()))?;
        }
        reader.flush(conn)?;
    }
    Ok(())
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() as i64
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> i64 {
    0
}

/// Follows one log file as it grows and rotates. Call [`Follower::poll`] repeatedly: each call
/// applies the complete lines written since the last one and saves the position with them.
pub struct Follower {
    path: PathBuf,
    key: String,
    file: Option<(BufReader<File>, LogPosition)>,
}

impl Follower {
    /// Opens `path` where the last follower of this account stopped: at its saved offset when
    /// the file is the same (same inode, not shorter), after finishing the rotated file
    /// (`path.1`, `path-*`) when it was rotated meanwhile, else at the start.
    pub fn open(conn: &mut DbConn, reader: &mut Reader, path: &Path) -> anyhow::Result<Follower> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let key = path.display().to_string();
        let mut follower = Follower {
            path,
            key,
            file: None,
        };
        let saved = store::log_position(conn, &reader.scope, &follower.key)?;
        let current = std::fs::metadata(&follower.path)
            .ok()
            .map(|m| (inode(&m), m.len() as i64));
        match (saved, current) {
            (Some(saved), Some((ino, len))) if saved.inode == ino && saved.byte_offset <= len => {
                follower.open_at(saved)?;
            }
            (Some(saved), _) => {
                match follower.rotated_sibling(saved.inode) {
                    Some(old) => {
                        log::info!(
                            "{}: rotated while stopped; finishing {} first",
                            follower.key,
                            old.display()
                        );
                        let mut file = BufReader::new(File::open(&old)?);
                        file.seek(SeekFrom::Start(saved.byte_offset.max(0) as u64))?;
                        follower.file = Some((file, saved));
                        follower.drain(conn, reader, true)?;
                    }
                    None => log::warn!(
                        "{}: the file read last time is gone; reading the current one from its start",
                        follower.key
                    ),
                }
                follower.file = None;
                follower.reopen_current()?;
            }
            (None, _) => follower.reopen_current()?,
        }
        Ok(follower)
    }

    fn open_at(&mut self, position: LogPosition) -> anyhow::Result<()> {
        let mut file = BufReader::new(File::open(&self.path)?);
        file.seek(SeekFrom::Start(position.byte_offset.max(0) as u64))?;
        self.file = Some((file, position));
        Ok(())
    }

    fn reopen_current(&mut self) -> anyhow::Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => self.open_at(LogPosition {
                inode: inode(&meta),
                byte_offset: 0,
            }),
            // Between a rotation's rename and the new file's creation: try again next poll.
            Err(_) => {
                self.file = None;
                Ok(())
            }
        }
    }

    /// The rotated copy of the file with this inode, when it is still next to it.
    fn rotated_sibling(&self, ino: i64) -> Option<PathBuf> {
        let dir = self.path.parent()?;
        let name = self.path.file_name()?.to_str()?.to_string();
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n != name && n.starts_with(&name) && !n.ends_with(".gz"))
            })
            .find(|p| std::fs::metadata(p).is_ok_and(|m| inode(&m) == ino))
    }

    /// Applies the complete lines after the position (and, at `to_end`, a last line without
    /// its newline: a rotated file grows no more).
    fn drain(
        &mut self,
        conn: &mut DbConn,
        reader: &mut Reader,
        to_end: bool,
    ) -> anyhow::Result<()> {
        let key = self.key.clone();
        let Some((file, position)) = self.file.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = file.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            if !buf.ends_with(b"\n") && !to_end {
                // A line still being written: read it whole next time.
                file.seek(SeekFrom::Current(-(n as i64)))?;
                break;
            }
            position.byte_offset += n as i64;
            let line = String::from_utf8_lossy(&buf).into_owned();
            let at = position.byte_offset;
            reader.line(conn, &line, &|| format!("{key} at byte {at}"))?;
            if reader.pending.len() >= BATCH - 1 {
                let p = *position;
                reader.flush_at(conn, Some((&key, p)))?;
            }
        }
        let p = *position;
        reader.flush_at(conn, Some((&key, p)))?;
        Ok(())
    }

    /// Reads what was written since the last poll; follows a rotation (a new file at the path)
    /// after finishing the old one. Answers whether anything was read.
    pub fn poll(&mut self, conn: &mut DbConn, reader: &mut Reader) -> anyhow::Result<bool> {
        let before = reader.stats.lines;
        if self.file.is_none() {
            self.reopen_current()?;
        }
        self.drain(conn, reader, false)?;
        let current = std::fs::metadata(&self.path).ok();
        if let (Some(meta), Some((_, position))) = (current.as_ref(), self.file.as_ref()) {
            let rotated = inode(meta) != position.inode;
            let truncated = !rotated && (meta.len() as i64) < position.byte_offset;
            if rotated {
                self.drain(conn, reader, true)?;
                self.reopen_current()?;
                self.drain(conn, reader, false)?;
            } else if truncated {
                log::warn!("{}: truncated; reading it again from its start", self.key);
                self.reopen_current()?;
                self.drain(conn, reader, false)?;
            }
        }
        Ok(reader.stats.lines > before)
    }
}
