//! Writes the `newc` cpio archives the kernel unpacks as an initramfs. Only
//! what an initramfs needs: directories, regular files, symbolic links.

use std::io::Write;

pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    pub fn new() -> Cpio {
        Cpio { out: Vec::new(), ino: 1 }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let name_z = format!("{name}\0");
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name_z.len(),
            0
        );
        self.ino += 1;
        let _ = self.out.write_all(header.as_bytes());
        let _ = self.out.write_all(name_z.as_bytes());
        self.pad();
        let _ = self.out.write_all(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | (mode & 0o7777), data);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_is_newc_and_aligned() {
        let mut c = Cpio::new();
        c.dir("bin");
        c.file("init", 0o755, b"#!/bin/sh\n");
        let a = c.finish();
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 4, 0);
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
        // The header of `init` says 0100755 and a 10-byte file.
        let s = String::from_utf8_lossy(&a);
        assert!(s.contains(&format!("{:08x}", 0o100755)));
        assert!(s.contains("0000000a"));
    }
}
