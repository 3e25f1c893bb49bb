//! The kernel as QEMU boots it fastest.
//!
//! A distribution kernel is a bzImage: real-mode setup code plus a compressed
//! vmlinux that the kernel unpacks into memory before it starts. Under TCG
//! that unpacking is emulated instruction by instruction and costs about half
//! a second of every boot. A vmlinux that carries the PVH entry point (the
//! Xen ELF note `PHYS32_ENTRY`, present in Debian's kernels) can instead be
//! loaded by QEMU directly, already unpacked, into the guest's memory. So an
//! image stores the unpacked vmlinux when the kernel has that entry point,
//! and the bzImage otherwise.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{io_err, ImageError, Result};

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit entry point PVH boot jumps to.
const PHYS32_ENTRY: u32 = 18;

/// The decompressor for a payload, chosen by its magic number (the formats
/// the kernel's `CONFIG_KERNEL_*` choices produce).
fn decompressor(payload: &[u8]) -> Option<&'static str> {
    let magics: &[(&[u8], &str)] = &[
        (&[0x1f, 0x8b], "gzip"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0x02, 0x21, 0x4c, 0x18], "lz4"),
        (b"BZh", "bzip2"),
    ];
    magics.iter().find(|(m, _)| payload.starts_with(m)).map(|(_, tool)| *tool)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The compressed vmlinux inside a bzImage (boot protocol 2.08 or later
/// records where it is), without the 4-byte uncompressed size the kernel's
/// build appends, and that size.
fn payload(bz: &[u8]) -> Option<(&[u8], u32)> {
    if bz.get(0x202..0x206)? != b"HdrS" || u16_at(bz, 0x206)? < 0x208 {
        return None;
    }
    let setup_sects = match *bz.get(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + u32_at(bz, 0x248)? as usize;
    let len = u32_at(bz, 0x24c)? as usize;
    let all = bz.get(start..start.checked_add(len)?)?;
    let (data, size) = all.split_at(all.len().checked_sub(4)?);
    Some((data, u32_at(size, 0)?))
}

/// Does this 64-bit ELF file carry the PVH entry point?
pub fn has_pvh_entry(elf: &[u8]) -> bool {
    (|| -> Option<bool> {
        if elf.get(0..5)? != b"\x7fELF\x02" {
            return Some(false);
        }
        let phoff = u64_at(elf, 0x20)? as usize;
        let phentsize = usize::from(u16_at(elf, 0x36)?);
        let phnum = usize::from(u16_at(elf, 0x38)?);
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            if u32_at(elf, ph)? != 4 {
                continue; // not PT_NOTE
            }
            let (mut at, end) = (u64_at(elf, ph + 8)? as usize, (u64_at(elf, ph + 8)? + u64_at(elf, ph + 32)?) as usize);
            while at + 12 <= end {
                let namesz = u32_at(elf, at)? as usize;
                let descsz = u32_at(elf, at + 4)? as usize;
                let kind = u32_at(elf, at + 8)?;
                let name = elf.get(at + 12..at + 12 + namesz)?;
                if name.starts_with(b"Xen") && kind == PHYS32_ENTRY {
                    return Some(true);
                }
                at += 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
            }
        }
        Some(false)
    })()
    .unwrap_or(false)
}

/// Writes the unpacked vmlinux of `bzimage` to `out` when it can be booted
/// directly (PVH). `Ok(false)` means "keep the bzImage": not a bzImage, an
/// unknown compression, a missing decompressor, or no PVH entry point.
pub fn unpack(bzimage: &Path, out: &Path) -> Result<bool> {
    let bz = std::fs::read(bzimage).map_err(io_err("reading the kernel"))?;
    let Some((data, size)) = payload(&bz) else { return Ok(false) };
    let Some(tool) = decompressor(data) else { return Ok(false) };
    let Ok(mut child) = Command::new(tool).arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn() else {
        return Ok(false);
    };
    // Feed stdin from a thread so a full stdout pipe cannot deadlock us.
    let mut stdin = child.stdin.take().ok_or_else(|| ImageError::Tool(format!("{tool}: no stdin")))?;
    let owned = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&owned));
    let output = child.wait_with_output().map_err(io_err(format!("running {tool}")))?;
    let _ = feeder.join();
    let elf = output.stdout;
    if !output.status.success() || elf.len() != size as usize || !has_pvh_entry(&elf) {
        return Ok(false);
    }
    std::fs::write(out, &elf).map_err(io_err("writing the unpacked kernel"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_NOTE holding one note.
    fn elf_with_note(name: &[u8], kind: u32) -> Vec<u8> {
        let mut e = vec![0u8; 0x40];
        e[0..5].copy_from_slice(b"\x7fELF\x02");
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes()); // e_phoff
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let mut note = Vec::new();
        note.extend((name.len() as u32).to_le_bytes());
        note.extend(8u32.to_le_bytes());
        note.extend(kind.to_le_bytes());
        note.extend(name);
        note.resize(note.len().next_multiple_of(4), 0);
        note.extend([0u8; 8]);
        let mut ph = vec![0u8; 56];
        ph[0..4].copy_from_slice(&4u32.to_le_bytes());
        ph[8..16].copy_from_slice(&(0x40u64 + 56).to_le_bytes()); // p_offset
        ph[32..40].copy_from_slice(&(note.len() as u64).to_le_bytes()); // p_filesz
        e.extend(ph);
        e.extend(note);
        e
    }

    #[test]
    fn finds_the_pvh_note() {
        assert!(has_pvh_entry(&elf_with_note(b"Xen\0", PHYS32_ENTRY)));
        assert!(!has_pvh_entry(&elf_with_note(b"Xen\0", 17)));
        assert!(!has_pvh_entry(&elf_with_note(b"GNU\0", PHYS32_ENTRY)));
        assert!(!has_pvh_entry(b"MZ not an elf"));
        let mut cut = elf_with_note(b"Xen\0", PHYS32_ENTRY);
        cut.truncate(100);
        assert!(!has_pvh_entry(&cut), "a truncated file is not trusted");
    }

    #[test]
    fn finds_the_payload_of_a_bzimage() {
        let mut bz = vec![0u8; 5 * 512];
        bz[0x1f1] = 4;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        bz[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&10u32.to_le_bytes());
        bz.extend([0u8; 16]);
        bz.extend([0x1f, 0x8b, 1, 2, 3, 4]);
        bz.extend(1234u32.to_le_bytes());
        let (data, size) = payload(&bz).expect("payload");
        assert_eq!((data, size), (&[0x1f, 0x8b, 1, 2, 3, 4][..], 1234));
        assert_eq!(decompressor(data), Some("gzip"));
        assert!(payload(&bz[..600]).is_none(), "a payload past the end of the file is refused");
        bz[0x202] = b'X';
        assert!(payload(&bz).is_none());
    }
}
