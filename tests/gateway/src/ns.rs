//! A private network and mount namespace for the whole test binary.
//!
//! Why: in standalone mode Envoy Gateway and the Envoy it starts use fixed ports (xDS 18000,
//! the Wasm cache 18002, the Gateway's listeners) and cluster DNS names (the filter server
//! `<name>-filters.<namespace>.svc.<cluster domain>` in the rendered EnvoyExtensionPolicy,
//! and Envoy Gateway's own `envoy-gateway.envoy-gateway-system.svc.cluster.local` that the
//! generated `wasm_cluster` points at). In a namespace of its own the run gets its own
//! loopback (no clash with anything else on the machine) and its own `/etc/hosts` (a bind
//! mount seen only here), so those names resolve as they do in a cluster and the rendered
//! objects are used unchanged.

use std::io::Write;
use std::path::PathBuf;

/// Enters the namespaces. Must run before any thread is started (unshare of a user
/// namespace needs a single-threaded process). Returns the hosts file that `/etc/hosts`
/// now is, for [`add_host`].
pub fn enter() -> Result<PathBuf, String> {
    unshare()?;
    let hosts = std::env::temp_dir().join(format!("edge-gateway-hosts-{}", std::process::id()));
    let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    text.push_str("127.0.0.1 localhost\n");
    std::fs::write(&hosts, text).map_err(|e| format!("{}: {e}", hosts.display()))?;
    let src = std::ffi::CString::new(hosts.to_str().unwrap()).unwrap();
    let dst = c"/etc/hosts";
    if unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) } != 0 {
        return Err(format!("bind {} on /etc/hosts: {}", hosts.display(), std::io::Error::last_os_error()));
    }
    loopback_up()?;
    Ok(hosts)
}

/// Leaves the machine's network and mount namespaces for new ones (with a user
/// namespace when not root), and makes every mount private to them, so that
/// nothing mounted afterwards is seen outside. Single-threaded callers only.
pub fn unshare() -> Result<(), String> {
    let root = unsafe { libc::geteuid() } == 0;
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut flags = libc::CLONE_NEWNET | libc::CLONE_NEWNS;
    if !root {
        // Without root, a user namespace gives the capabilities for the other two.
        flags |= libc::CLONE_NEWUSER;
    }
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(format!("unshare(net, mount): {}", std::io::Error::last_os_error()));
    }
    if !root {
        let _ = std::fs::write("/proc/self/setgroups", "deny");
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(|e| format!("uid_map: {e}"))?;
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).map_err(|e| format!("gid_map: {e}"))?;
    }
    // Mounts made here must not propagate back to the machine.
    let none = c"none";
    let slash = c"/";
    if unsafe { libc::mount(none.as_ptr(), slash.as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) } != 0 {
        return Err(format!("make / private: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Resolves `name` to `ip` inside the namespace (the bind-mounted file is ours).
pub fn add_host(name: &str, ip: std::net::Ipv4Addr) {
    let mut f = std::fs::OpenOptions::new().append(true).open("/etc/hosts").expect("our /etc/hosts");
    writeln!(f, "{ip} {name}").expect("write /etc/hosts");
}

/// A new network namespace has its loopback down.
pub fn loopback_up() -> Result<(), String> {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("SIOCGIFFLAGS lo: {e}"));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r != 0 {
            return Err(format!("SIOCSIFFLAGS lo up: {e}"));
        }
    }
    Ok(())
}
