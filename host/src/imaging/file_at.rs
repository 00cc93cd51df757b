//! A reader with its own position over a shared, open file.
//!
//! A slide keeps one file handle for its lifetime and may decode tiles on several threads at
//! once. Each decoder gets a [`FileAt`]: it reads with positioned reads (`pread` on Unix,
//! `seek_read` on Windows), so readers never move each other's position and the file cannot be
//! swapped under an open slide by renaming another one into its path.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// A `Read + Seek` view of a shared file, starting at offset 0.
#[derive(Clone, Debug)]
pub(super) struct FileAt {
    file: Arc<File>,
    len: u64,
    pos: u64,
}

impl FileAt {
    pub fn new(file: Arc<File>, len: u64) -> FileAt {
        FileAt { file, len, pos: 0 }
    }

    /// Length of the file when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Fills as much of `buf` as the file holds from `offset`; returns the count read.
    pub fn read_full_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<usize> {
        let mut total = 0;
        while !buf.is_empty() {
            match read_at(&self.file, buf, offset) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    offset += n as u64;
                    buf = &mut buf[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

impl Read for FileAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileAt {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let pos = match target {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}
