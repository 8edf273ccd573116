//! An append-only file of JSON lines, for what a run must keep but need not hold in memory
//! (a large fleet's guests and role assignments). The file is anonymous (unlinked on
//! creation, owner-only): nothing is left behind when a run ends or is killed. Where no
//! temporary file can be made, the lines stay in memory: slower to nothing, only larger.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

/// Buffered bytes written to the file at once.
const BUFFER: usize = 256 * 1024;

pub struct Spill {
    file: Option<File>,
    /// Bytes already in the file.
    flushed: u64,
    /// Bytes after `flushed` (all of them without a file).
    buffer: Vec<u8>,
}

impl Spill {
    pub fn new() -> Spill {
        Spill {
            file: tempfile::tempfile().ok(),
            flushed: 0,
            buffer: Vec::new(),
        }
    }

    /// Appends `line` (without its newline) and returns its start offset.
    pub fn append(&mut self, line: &[u8]) -> std::io::Result<u64> {
        let start = self.len();
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        if self.buffer.len() >= BUFFER {
            self.flush()?;
        }
        Ok(start)
    }

    /// Appends `bytes` as they are: fixed-size records (see [`Spill::for_each_record`]).
    pub fn append_raw(&mut self, bytes: &[u8]) -> std::io::Result<u64> {
        let start = self.len();
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= BUFFER {
            self.flush()?;
        }
        Ok(start)
    }

    /// Calls `each` with every `size`-byte record (written with [`Spill::append_raw`]) and
    /// its position, in order, reading a block at a time.
    pub fn for_each_record(
        &self,
        size: usize,
        mut each: impl FnMut(usize, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let total = self.len();
        let block = (BUFFER / size).max(1) as u64 * size as u64;
        let (mut start, mut index) = (0u64, 0usize);
        while start < total {
            let end = (start + block).min(total);
            for record in self.read(start, end)?.chunks_exact(size) {
                each(index, record)?;
                index += 1;
            }
            start = end;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.flushed + self.buffer.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(file) = &mut self.file {
            file.write_all(&self.buffer)?;
            self.flushed += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Makes everything appended readable by offset without the buffer.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.buffer.shrink_to_fit();
        Ok(())
    }

    /// The bytes from `start` to `end`.
    pub fn read(&self, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0; (end - start) as usize];
        let in_file = end.min(self.flushed).saturating_sub(start) as usize;
        if in_file > 0 {
            let file = self.file.as_ref().expect("flushed bytes are in the file");
            file.read_exact_at(&mut out[..in_file], start)?;
        }
        if in_file < out.len() {
            let from = (start + in_file as u64 - self.flushed) as usize;
            let rest = out.len() - in_file;
            out[in_file..].copy_from_slice(&self.buffer[from..from + rest]);
        }
        Ok(out)
    }

    /// Calls `each` with every line and its start offset, in order, reading a block at a time.
    pub fn for_each_line(
        &self,
        mut each: impl FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let total = self.len();
        let mut start = 0u64;
        let mut carry: Vec<u8> = Vec::new();
        while start < total {
            let end = (start + BUFFER as u64).min(total);
            let block = self.read(start, end)?;
            let block_start = start - carry.len() as u64;
            carry.extend_from_slice(&block);
            let mut line_start = 0usize;
            while let Some(newline) = carry[line_start..].iter().position(|b| *b == b'\n') {
                let line_end = line_start + newline;
                each(
                    block_start + line_start as u64,
                    &carry[line_start..line_end],
                )?;
                line_start = line_end + 1;
            }
            carry.drain(..line_start);
            start = end;
        }
        Ok(())
    }
}

/// An empty spill in memory (what `std::mem::take` leaves behind).
impl Default for Spill {
    fn default() -> Self {
        Spill {
            file: None,
            flushed: 0,
            buffer: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_by_offset_and_in_order_across_blocks_and_the_buffer() {
        let mut spill = Spill::new();
        assert!(spill.file.is_some(), "a temporary file could be made here");
        let lines: Vec<String> = (0..40_000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
            .collect();
        let mut offsets = Vec::new();
        for line in &lines {
            offsets.push(spill.append(line.as_bytes()).unwrap());
        }
        // Part of it still buffered: reads cross from the file into the buffer.
        assert!(spill.flushed > 0 && !spill.buffer.is_empty());
        for i in [0, 1, 20_000, 39_999] {
            let end = offsets.get(i + 1).copied().unwrap_or(spill.len()) - 1;
            assert_eq!(spill.read(offsets[i], end).unwrap(), lines[i].as_bytes());
        }
        spill.finish().unwrap();
        let mut seen = Vec::new();
        spill
            .for_each_line(|offset, line| {
                seen.push((offset, String::from_utf8(line.to_vec()).unwrap()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.len(), lines.len());
        for (i, (offset, line)) in seen.iter().enumerate() {
            assert_eq!((*offset, line), (offsets[i], &lines[i]));
        }
    }

    #[test]
    fn without_a_file_lines_stay_in_memory() {
        let mut spill = Spill {
            file: None,
            flushed: 0,
            buffer: Vec::new(),
        };
        let a = spill.append(b"first").unwrap();
        let b = spill.append(b"second").unwrap();
        spill.finish().unwrap();
        assert_eq!(spill.read(b, spill.len() - 1).unwrap(), b"second");
        assert_eq!(spill.read(a, b - 1).unwrap(), b"first");
    }
}
