//! The add pipeline both daemons run, with their differences behind `Flavor`:
//! * Kubo: core/coreunix/add.go (HEAD 867cdc5): a fresh adder and MFS root per
//!   top-level entry; `addNode` names an unnamed node by its CID; every directory is
//!   output by `outputDirs`; duplicate names fail with mfs `ErrDirExists`.
//! * ipfs-cluster v1.1.6: adder/ipfsadd/add.go: ONE adder and MFS root per request,
//!   `OutputPrefix` joined to every output name, unnamed node → name "", `outputDirs`
//!   skips files and directories that are no longer cached (its DAG service cannot
//!   `Get`, adder/util.go), root of a file entry = the last file added.
//!
//! Events are produced in upstream order and handed to `emit` as they happen, so that
//! progress events interleave with body reads exactly as upstream.

use crate::dag::{self, Built, ChunkerSpec, FileParams, GoErr, GoRead, Link, Prefix};
use crate::multipart::{path_join, DirIter, Entry, Meta, PartFile, Walker};
use cid::Cid;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Kubo,
    Cluster,
}

/// One output of the adder (coreiface.AddEvent / api.AddedOutput before rendering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddOut {
    pub name: Vec<u8>,
    pub cid: Option<Cid>,
    pub bytes: u64,
    pub size: u64,
}

/// coreunix/add.go and ipfsadd/add.go `progressReaderIncrement`.
const PROGRESS_INCREMENT: u64 = 256 * 1024;

enum MNode {
    File(Built),
    Dir(MDir),
}

#[derive(Default)]
struct MDir {
    /// Sorted by name bytes, as dag-pb links and mfs `ListNames` are.
    children: BTreeMap<Vec<u8>, MNode>,
    /// Cluster only: still in the mfs entries cache (created during this entry).
    cached: bool,
    /// The encoded node, until the directory (or a descendant) changes: deep trees
    /// would otherwise be re-hashed once per ancestor.
    memo: std::cell::RefCell<Option<Built>>,
}

impl MDir {
    fn new() -> Self {
        MDir { children: BTreeMap::new(), cached: true, memo: std::cell::RefCell::new(None) }
    }

    fn node(&self, prefix: Prefix) -> Built {
        if let Some(b) = self.memo.borrow().as_ref() {
            return b.clone();
        }
        let b = self.compute(prefix);
        *self.memo.borrow_mut() = Some(b.clone());
        b
    }

    fn compute(&self, prefix: Prefix) -> Built {
        let links: Vec<Link> = self
            .children
            .iter()
            .map(|(name, c)| {
                let b = match c {
                    MNode::File(b) => b.clone(),
                    MNode::Dir(d) => d.node(prefix),
                };
                Link { cid: b.cid, name: name.clone(), tsize: b.size }
            })
            .collect();
        dag::build_dir(prefix, &links)
    }
}

const ERR_DIR_EXISTS: &str = "directory already has entry by that name";

pub struct Adder<'e> {
    pub flavor: Flavor,
    pub file: FileParams,
    pub chunker: String,
    pub progress: bool,
    pub silent: bool,
    root: MDir,
    /// Cluster `OutputPrefix`.
    pub output_prefix: Vec<u8>,
    last_file: Option<Built>,
    emit: &'e mut dyn FnMut(AddOut) -> Result<(), GoErr>,
}

fn split_dir(path: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => (path[..i].to_vec(), path[i + 1..].to_vec()),
        None => (Vec::new(), path.to_vec()),
    }
}

struct Progress<'a, 'b, 'e, R: GoRead> {
    inner: PartFile<'a, R>,
    path: Vec<u8>,
    bytes: u64,
    last: u64,
    emit: &'b mut &'e mut dyn FnMut(AddOut) -> Result<(), GoErr>,
    failed: Option<GoErr>,
}

impl<R: GoRead> GoRead for Progress<'_, '_, '_, R> {
    fn go_read(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
        let (n, err) = self.inner.go_read(buf);
        self.bytes += n as u64;
        // Kubo: `err == io.EOF`; cluster: `errors.Is(err, io.EOF)`; our errors are never
        // wrapped EOFs at this level, so the two agree.
        if self.bytes - self.last >= PROGRESS_INCREMENT || err == Some(GoErr::Eof) {
            self.last = self.bytes;
            if let Err(e) = (self.emit)(AddOut { name: self.path.clone(), cid: None, bytes: self.bytes, size: 0 }) {
                self.failed = Some(e);
            }
        }
        (n, err)
    }
}

impl<'e> Adder<'e> {
    pub fn new(flavor: Flavor, file: FileParams, chunker: String, emit: &'e mut dyn FnMut(AddOut) -> Result<(), GoErr>) -> Self {
        Adder {
            flavor,
            file,
            chunker,
            progress: false,
            silent: false,
            root: MDir::new(),
            output_prefix: Vec::new(),
            last_file: None,
            emit,
        }
    }

    /// Kubo: a fresh MFS root for the next top-level entry.
    pub fn reset_root(&mut self) {
        self.root = MDir::new();
        self.last_file = None;
    }

    fn out(&mut self, name: Vec<u8>, b: &Built) -> Result<(), GoErr> {
        let name = match self.flavor {
            Flavor::Kubo => name,
            Flavor::Cluster => path_join(&self.output_prefix, &name),
        };
        (self.emit)(AddOut { name, cid: Some(b.cid), bytes: 0, size: b.size })
    }

    fn dir_mut(&mut self, path: &[u8], create: bool) -> Result<&mut MDir, GoErr> {
        let flavor = self.flavor;
        let mut cur = &mut self.root;
        // Whatever is reached through here may change: forget the encodings.
        *cur.memo.get_mut() = None;
        if path.is_empty() {
            return Ok(cur);
        }
        for seg in path.split(|&c| c == b'/').filter(|s| !s.is_empty()) {
            let exists = cur.children.contains_key(seg);
            if !exists {
                if !create {
                    return Err(GoErr::Msg("file does not exist".into()));
                }
                cur.children.insert(seg.to_vec(), MNode::Dir(MDir::new()));
            }
            cur = match cur.children.get_mut(seg) {
                Some(MNode::Dir(d)) => {
                    if flavor == Flavor::Cluster && !d.cached {
                        // mfs Child() must load it from the cluster DAG service.
                        return Err(GoErr::Msg(crate::cluster::ERR_DAG_NOT_FOUND.into()));
                    }
                    *d.memo.get_mut() = None;
                    d
                }
                _ => return Err(GoErr::Msg("mkdir: not a directory".into())),
            };
        }
        Ok(cur)
    }

    fn add_node(&mut self, node: Built, path: &[u8]) -> Result<(), GoErr> {
        let cid_s = node.cid.to_string().into_bytes();
        let (path, output_name) = if path.is_empty() {
            (cid_s, match self.flavor {
                Flavor::Kubo => node.cid.to_string().into_bytes(),
                Flavor::Cluster => Vec::new(),
            })
        } else {
            (path.to_vec(), path.to_vec())
        };
        let (dir, name) = split_dir(&path);
        let flavor = self.flavor;
        let d = self.dir_mut(&dir, true)?;
        match d.children.get(&name) {
            None => {}
            // Kubo: the existing child is found in its DAG service → ErrDirExists.
            Some(_) if flavor == Flavor::Kubo => return Err(GoErr::Msg(ERR_DIR_EXISTS.into())),
            Some(MNode::Dir(sub)) if sub.cached => return Err(GoErr::Msg(ERR_DIR_EXISTS.into())),
            // Cluster: looking the old child up fails (no DAG Get), so it is replaced.
            Some(_) => {}
        }
        d.children.insert(name, MNode::File(node.clone()));
        self.last_file = Some(node.clone());
        if !self.silent {
            self.out(output_name, &node)?;
        }
        Ok(())
    }

    fn add_file<R: GoRead>(&mut self, w: &mut Walker<R>, path: &[u8]) -> Result<(), GoErr> {
        let size = match dag::parse_chunker(&self.chunker) {
            Ok(ChunkerSpec::Size(n)) => n,
            Ok(ChunkerSpec::Unsupported(s)) => {
                return Err(GoErr::Msg(format!("standin: chunker {} is not implemented", s)))
            }
            Err(e) => return Err(GoErr::Msg(e)),
        };
        let p = FileParams { chunk_size: size, ..self.file };
        let node = if self.progress {
            let mut pr = Progress { inner: PartFile { w }, path: path.to_vec(), bytes: 0, last: 0, emit: &mut self.emit, failed: None };
            let r = dag::import_file(&mut pr, p);
            if let Some(e) = pr.failed {
                return Err(e);
            }
            r?
        } else {
            dag::import_file(&mut PartFile { w }, p)?
        };
        self.add_node(node, path)
    }

    fn add_file_node<R: GoRead>(&mut self, w: &mut Walker<R>, path: &[u8], entry: Entry, toplevel: bool) -> Result<(), GoErr> {
        match entry {
            Entry::Dir { path: mp, .. } => self.add_dir(w, path, DirIter::for_dir(mp), toplevel),
            Entry::Symlink { target, .. } => {
                let node = dag::build_symlink(self.file.prefix, &target);
                self.add_node(node, path)
            }
            Entry::File { .. } => self.add_file(w, path),
        }
    }

    fn add_dir<R: GoRead>(&mut self, w: &mut Walker<R>, path: &[u8], mut it: DirIter, toplevel: bool) -> Result<(), GoErr> {
        // Kubo peeks the first entry before creating the directory; empty
        // directories are kept (Import.UnixFSIncludeEmptyDirs defaults to true), and
        // the cluster never skips them: same outcome, same order of reads.
        let first = w.next(&mut it);
        if first.is_none() {
            if let Some(e) = it.err() {
                return Err(e);
            }
        }
        if !(toplevel && path.is_empty()) {
            self.dir_mut(path, true)?;
        }
        let mut cur = first;
        while let Some((name, entry)) = cur {
            let fpath = path_join(path, &name);
            self.add_file_node(w, &fpath, entry, false)?;
            cur = w.next(&mut it);
        }
        match it.err() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Post-order directory outputs (`outputDirs`).
    fn output_dirs(&mut self, path: &[u8], dir_path: &[u8]) -> Result<(), GoErr> {
        let prefix = self.file.prefix;
        let names: Vec<Vec<u8>> = {
            let d = self.dir_at(dir_path);
            d.children.keys().cloned().collect()
        };
        for name in names {
            let child_path = path_join(dir_path, &name);
            let is_dir = matches!(self.dir_at(dir_path).children.get(&name), Some(MNode::Dir(_)));
            if !is_dir {
                continue; // files: nothing to output (cluster: Child() fails, skipped)
            }
            if self.flavor == Flavor::Cluster {
                let cached = matches!(self.dir_at(dir_path).children.get(&name), Some(MNode::Dir(d)) if d.cached);
                if !cached {
                    continue;
                }
            }
            self.output_dirs(&path_join(path, &name), &child_path)?;
            // fsn.Uncache(name)
            if let Some(MNode::Dir(d)) = self.dir_at_mut(dir_path).children.get_mut(&name) {
                d.cached = false;
            }
        }
        let node = self.dir_at(dir_path).node(prefix);
        self.out(path.to_vec(), &node)
    }

    fn dir_at(&self, path: &[u8]) -> &MDir {
        let mut cur = &self.root;
        for seg in path.split(|&c| c == b'/').filter(|s| !s.is_empty()) {
            match cur.children.get(seg) {
                Some(MNode::Dir(d)) => cur = d,
                _ => return cur,
            }
        }
        cur
    }

    fn dir_at_mut(&mut self, path: &[u8]) -> &mut MDir {
        fn walk<'a>(d: &'a mut MDir, segs: &[&[u8]]) -> &'a mut MDir {
            match segs.split_first() {
                None => d,
                Some((s, rest)) => {
                    if matches!(d.children.get(*s), Some(MNode::Dir(_))) {
                        match d.children.get_mut(*s) {
                            Some(MNode::Dir(c)) => walk(c, rest),
                            _ => unreachable!("checked just above"),
                        }
                    } else {
                        d
                    }
                }
            }
        }
        let segs: Vec<&[u8]> = path.split(|&c| c == b'/').filter(|s| !s.is_empty()).collect();
        walk(&mut self.root, &segs)
    }

    /// `AddAllAndPin` without the pin: returns the root node.
    pub fn add_all<R: GoRead>(&mut self, w: &mut Walker<R>, entry: Entry) -> Result<Built, GoErr> {
        let is_dir = matches!(entry, Entry::Dir { .. });
        self.add_file_node(w, b"", entry, true)?;
        if !is_dir {
            match self.flavor {
                Flavor::Kubo => {
                    let Some((name, child)) = self.root.children.iter().next() else {
                        return Err(GoErr::Msg("expected at least one child dir, got none".into()));
                    };
                    let name = name.clone();
                    let b = match child {
                        MNode::File(b) => b.clone(),
                        MNode::Dir(d) => d.node(self.file.prefix),
                    };
                    if matches!(child, MNode::Dir(_)) {
                        self.output_dirs(&name, &name)?;
                    }
                    Ok(b)
                }
                Flavor::Cluster => {
                    if self.root.children.is_empty() {
                        return Err(GoErr::Msg("expected at least one child dir, got none".into()));
                    }
                    Ok(self.last_file.clone().expect("a file entry adds a file"))
                }
            }
        } else {
            let nd = self.root.node(self.file.prefix);
            self.output_dirs(b"", b"")?;
            Ok(nd)
        }
    }
}

/// Render the mode/mtime Kubo echoes (core/commands/add.go).
pub fn kubo_meta(meta: &Meta) -> (Option<String>, i64, i64) {
    let mode = if meta.mode != 0 { Some(format!("0{:o}", meta.mode)) } else { None };
    let (mut secs, mut nsecs) = match meta.mtime {
        Some(t) => t,
        None => return (mode, 0, 0),
    };
    if !(0..1_000_000_000).contains(&nsecs) {
        let n = nsecs / 1_000_000_000;
        secs += n;
        nsecs -= n * 1_000_000_000;
        if nsecs < 0 {
            nsecs += 1_000_000_000;
            secs -= 1;
        }
    }
    (mode, secs, nsecs)
}
