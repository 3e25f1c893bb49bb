//! The few system calls the data plane needs that have no safe wrapper in std:
//! entering a network namespace (`setns`) and opening a tap device
//! (`TUNSETIFF`). Everything unsafe in Strato's networking is in this file.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Runs `f` on a fresh thread that has entered the network namespace at
/// `ns_path` (`/run/netns/<name>`). Sockets and devices it opens belong to
/// that namespace and stay there when handed back. A fresh thread is used so
/// no thread of the caller ever changes namespace.
pub fn in_namespace<T: Send + 'static>(ns_path: &str, f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    let ns = File::open(ns_path)?;
    let handle = std::thread::Builder::new().name("strato-netns".into()).spawn(move || {
        // SAFETY: `ns` is an open namespace file descriptor owned by this
        // closure; setns only affects the calling thread, which exists only to
        // run `f` and then ends.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        f()
    })?;
    handle.join().map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// Opens the persistent tap device `name` (which must exist in the calling
/// thread's namespace) and returns its file descriptor, close-on-exec.
pub fn open_tap(name: &str) -> io::Result<OwnedFd> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {name:?}")));
    }
    let file = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open("/dev/net/tun")?;
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: IFF_TAP | IFF_NO_PI, _pad: [0; 22] };
    for (i, b) in name.bytes().enumerate() {
        req.name[i] = b as libc::c_char;
    }
    // SAFETY: the descriptor is a valid open /dev/net/tun; `req` is a properly
    // sized, initialised `struct ifreq` that outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}

/// Makes `fd` appear as descriptor `target` in a child about to `exec`, with
/// close-on-exec cleared. For `CommandExt::pre_exec`, so it only calls
/// async-signal-safe functions.
pub fn dup_into_child(fd: i32, target: i32) -> io::Result<()> {
    // SAFETY: dup2 and fcntl are async-signal-safe and operate on descriptors
    // the child inherited; no memory is touched.
    unsafe {
        if fd == target {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(fd, target) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Arranges for `fd` to be descriptor `target` in the child `cmd` starts.
/// The descriptor must stay open until the child has been spawned.
pub fn pass_fd(cmd: &mut std::process::Command, fd: i32, target: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls dup2 and
    // fcntl, which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || dup_into_child(fd, target));
    }
}

/// Is process `pid` alive (it exists and is not a zombie)?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')).unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) has no memory effects; a stale pid at worst gets ESRCH.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it), so a
/// command-line tool whose output is cut short (`strato doctor | head`) ends
/// quietly, as Unix tools do, instead of failing on a write. Not for servers:
/// there a closed socket must be an error to handle, not the end.
pub fn default_sigpipe() {
    // SAFETY: changing a signal disposition to SIG_DFL installs no handler
    // code; done at start-up, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX - 1));
    }
}
