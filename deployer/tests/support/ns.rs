//! A private network and mount namespace, and a root of its own, for a whole test binary.
//!
//! Why: Envoy Gateway with its Kubernetes provider expects to run in a pod. Its ports are
//! fixed and bound on every address (xDS 18000, the Wasm cache 18002, the topology webhook
//! 9443, metrics 19001, health 8081), and so are its paths: its serving certificate is read
//! from `/certs` (the certgen Secret mounted there) and its Wasm cache is `/var/lib/eg/wasm`.
//! In a network namespace of its own the run gets its own loopback (nothing listens outside
//! it, no clash with another run); in a root of its own (the machine's `/` mirrored by bind
//! mounts, plus those two directories on a tmpfs) the fixed paths exist for this run only,
//! and `/etc/hosts` is ours, so in-cluster names the rendered objects use resolve here.
//! Nothing of it is visible outside the process and its children.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path")
}

fn mount(src: &Path, dst: &Path, fstype: Option<&str>, flags: libc::c_ulong) -> Result<(), String> {
    let (s, d) = (cstr(src), cstr(dst));
    let t = fstype.map(|t| CString::new(t).unwrap());
    let r = unsafe {
        libc::mount(s.as_ptr(), d.as_ptr(), t.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()), flags, std::ptr::null())
    };
    if r != 0 {
        return Err(format!("mount {} on {}: {}", src.display(), dst.display(), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Makes `dst` a tmpfs holding what `src` holds (each entry bind-mounted from there), so
/// new entries can be created in `dst` without touching `src`.
fn mirror(dst: &Path, src: &Path) -> Result<(), String> {
    mount(Path::new("tmpfs"), dst, Some("tmpfs"), 0)?;
    let entries = std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))?;
    for e in entries.flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let ft = e.file_type().map_err(|e| e.to_string())?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(target, &to).map_err(|e| e.to_string())?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to).map_err(|e| e.to_string())?;
            mount(&from, &to, None, libc::MS_BIND | libc::MS_REC)?;
        } else {
            std::fs::File::create(&to).map_err(|e| e.to_string())?;
            mount(&from, &to, None, libc::MS_BIND)?;
        }
    }
    Ok(())
}

/// Enters the namespaces and the new root. Must run before any thread is started
/// (unshare of a user namespace needs a single-threaded process).
pub fn enter() -> Result<(), String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    gateway::ns::unshare()?;
    // Named as `scratch` names its directories: a later run removes it once this process
    // is gone (the mounts on it vanish with the namespace).
    let new = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deployer").join(format!("root-{}", std::process::id()));
    std::fs::create_dir_all(&new).map_err(|e| e.to_string())?;
    mirror(&new, Path::new("/"))?;
    mirror(&new.join("var/lib"), Path::new("/var/lib"))?;
    for d in ["certs", "var/lib/eg"] {
        std::fs::create_dir_all(new.join(d)).map_err(|e| e.to_string())?;
    }
    // Our own /etc/hosts (bound over the mirrored one): `add_host` appends to it.
    let hosts = std::env::temp_dir().join(format!("ipfs-edge-hosts-{}", std::process::id()));
    std::fs::write(&hosts, "127.0.0.1 localhost\n").map_err(|e| e.to_string())?;
    mount(&hosts, &new.join("etc/hosts"), None, libc::MS_BIND)?;
    // The mount holds the file; its name outside is not needed.
    let _ = std::fs::remove_file(&hosts);
    let n = cstr(&new);
    if unsafe { libc::chroot(n.as_ptr()) } != 0 {
        return Err(format!("chroot {}: {}", new.display(), std::io::Error::last_os_error()));
    }
    std::env::set_current_dir(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
    loopback_up()
}

// The same /etc/hosts and loopback handling as tests/gateway's namespace.
#[allow(unused_imports)] // each test binary compiles support/; not every one adds hosts
pub use gateway::ns::add_host;
use gateway::ns::loopback_up;
