//! UnixFS DAG building as boxo does it (v0.42.0 for Kubo, v0.39.0 for the cluster; the
//! importer files are identical): fixed-size chunker (chunker/splitting.go), balanced
//! layout (importer/balanced/builder.go), trickle layout (importer/trickle/trickledag.go),
//! DagBuilderHelper (importer/helpers/dagbuilder.go), raw leaves
//! (ipld/merkledag/raw.go `NewRawNodeWPrefix`: raw leaves are always CIDv1), dag-pb
//! encoding with every link carrying Name and Tsize (merkledag ProtoNode), UnixFS `Data`
//! protobuf (unixfs/pb, gogo proto2: optional fields written when set).

use cid::multihash::Multihash;
use cid::Cid;
use sha2::{Digest, Sha256};

pub const DAG_PB: u64 = 0x70;
pub const RAW: u64 = 0x55;
const SHA2_256: u64 = 0x12;

/// boxo helpers.DefaultLinksPerBlock (importer/helpers/helpers.go).
pub const DEFAULT_LINKS_PER_BLOCK: usize = 174;
/// boxo chunker.DefaultBlockSize.
pub const DEFAULT_CHUNK: usize = 262144;
/// boxo chunker.ChunkSizeLimit (2 MiB - 256).
pub const CHUNK_SIZE_LIMIT: i64 = 2 * 1024 * 1024 - 256;

// UnixFS Data.Type values (unixfs/pb/unixfs.proto).
pub const T_RAW: u64 = 0;
pub const T_DIRECTORY: u64 = 1;
pub const T_FILE: u64 = 2;
pub const T_SYMLINK: u64 = 4;

/// A Go `(n, err)` read error, with Go's `Error()` strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoErr {
    Eof,
    UnexpectedEof,
    Msg(String),
}

impl std::fmt::Display for GoErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoErr::Eof => f.write_str("EOF"),
            GoErr::UnexpectedEof => f.write_str("unexpected EOF"),
            GoErr::Msg(m) => f.write_str(m),
        }
    }
}

/// An `io.Reader` in Go's shape: bytes and an optional error from the same call.
pub trait GoRead {
    fn go_read(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>);
}

/// CID prefix used by the adder: `merkledag.PrefixForCidVersion` + sha2-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub version: u8,
}

impl Prefix {
    pub fn sum(&self, codec: u64, data: &[u8]) -> Cid {
        let digest = Sha256::digest(data);
        let mh = Multihash::<64>::wrap(SHA2_256, &digest).expect("32-byte digest fits");
        // go-cid Prefix.WithCodec: any codec other than dag-pb forces CIDv1.
        if self.version == 0 && codec == DAG_PB {
            Cid::new_v0(mh).expect("sha2-256 multihash is a valid v0")
        } else {
            Cid::new_v1(codec, mh)
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

/// UnixFS `Data` message; `filesize` is always set by `FSNode.GetBytes`, except for
/// directories (`FolderPBData`) and symlinks (`SymlinkData`).
pub fn unixfs_data(typ: u64, data: Option<&[u8]>, filesize: Option<u64>, blocksizes: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    put_uint(&mut out, 1, typ);
    if let Some(d) = data {
        put_bytes(&mut out, 2, d);
    }
    if let Some(s) = filesize {
        put_uint(&mut out, 3, s);
    }
    for b in blocksizes {
        put_uint(&mut out, 4, *b);
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub cid: Cid,
    pub name: Vec<u8>,
    pub tsize: u64,
}

/// dag-pb PBNode: links (field 2) first, then Data (field 1) — canonical dag-pb order.
/// Links are sorted by name bytes (stable), as dag-pb requires.
pub fn encode_pbnode(links: &[Link], data: &[u8]) -> Vec<u8> {
    let mut sorted: Vec<&Link> = links.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for l in sorted {
        let mut lb = Vec::new();
        put_bytes(&mut lb, 1, &l.cid.to_bytes());
        put_bytes(&mut lb, 2, &l.name);
        put_uint(&mut lb, 3, l.tsize);
        put_bytes(&mut out, 2, &lb);
    }
    put_bytes(&mut out, 1, data);
    out
}

/// A built node: its CID and `ipld.Node.Size()` (cumulative: encoded block plus the
/// Tsize of every link; for raw nodes the data length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub cid: Cid,
    pub size: u64,
}

pub fn build_pbnode(prefix: Prefix, links: &[Link], data: &[u8]) -> Built {
    let block = encode_pbnode(links, data);
    let size = block.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
    Built { cid: prefix.sum(DAG_PB, &block), size }
}

/// `ft.EmptyDirNode` / an MFS basic directory with these links.
pub fn build_dir(prefix: Prefix, links: &[Link]) -> Built {
    build_pbnode(prefix, links, &unixfs_data(T_DIRECTORY, None, None, &[]))
}

/// `addSymlink`: `unixfs.SymlinkData(target)` in a dag-pb node.
pub fn build_symlink(prefix: Prefix, target: &[u8]) -> Built {
    build_pbnode(prefix, &[], &unixfs_data(T_SYMLINK, Some(target), None, &[]))
}

/// Parameters of one file import.
#[derive(Clone, Copy, Debug)]
pub struct FileParams {
    pub prefix: Prefix,
    pub raw_leaves: bool,
    pub chunk_size: usize,
    pub max_links: usize,
    pub trickle: bool,
}

impl Default for FileParams {
    fn default() -> Self {
        FileParams {
            prefix: Prefix { version: 0 },
            raw_leaves: false,
            chunk_size: DEFAULT_CHUNK,
            max_links: DEFAULT_LINKS_PER_BLOCK,
            trickle: false,
        }
    }
}

/// `io.ReadFull` (io.ReadAtLeast with min = len(buf)).
fn read_full(r: &mut dyn GoRead, buf: &mut [u8]) -> (usize, Option<GoErr>) {
    let min = buf.len();
    let mut n = 0;
    let mut err = None;
    while n < min && err.is_none() {
        let (nn, e) = r.go_read(&mut buf[n..]);
        n += nn;
        err = e;
    }
    if n >= min {
        err = None;
    } else if n > 0 && err == Some(GoErr::Eof) {
        err = Some(GoErr::UnexpectedEof);
    }
    (n, err)
}

/// boxo `sizeSplitterv2` + `DagBuilderHelper` state (prepareNext/Done/Next), kept
/// call-for-call so that the reads (and so Kubo's progress events, which count reads)
/// happen exactly when boxo makes them.
struct Db<'a> {
    r: &'a mut dyn GoRead,
    size: usize,
    spl_err: Option<GoErr>,
    next_data: Option<Vec<u8>>,
    recvd_err: Option<GoErr>,
    p: FileParams,
}

impl Db<'_> {
    fn next_bytes(&mut self) -> (Option<Vec<u8>>, Option<GoErr>) {
        if let Some(e) = &self.spl_err {
            return (None, Some(e.clone()));
        }
        let mut full = vec![0u8; self.size];
        let (n, err) = read_full(self.r, &mut full);
        match err {
            None => (Some(full), None),
            Some(GoErr::UnexpectedEof) => {
                self.spl_err = Some(GoErr::Eof);
                full.truncate(n);
                (Some(full), None)
            }
            Some(e) => (None, Some(e)),
        }
    }

    fn prepare_next(&mut self) {
        if self.next_data.is_some() || self.recvd_err.is_some() {
            return;
        }
        let (d, e) = self.next_bytes();
        self.next_data = d;
        self.recvd_err = if e == Some(GoErr::Eof) { None } else { e };
    }

    fn done(&mut self) -> bool {
        self.prepare_next();
        if self.recvd_err.is_some() {
            return false;
        }
        self.next_data.is_none()
    }

    fn next(&mut self) -> Result<Vec<u8>, GoErr> {
        self.prepare_next();
        let d = self.next_data.take();
        if let Some(e) = &self.recvd_err {
            return Err(e.clone());
        }
        Ok(d.unwrap_or_default())
    }

    fn new_leaf_node(&self, data: Option<&[u8]>, typ: u64) -> Built {
        if self.p.raw_leaves {
            let d = data.unwrap_or(&[]);
            return Built { cid: self.p.prefix.sum(RAW, d), size: d.len() as u64 };
        }
        let len = data.map(|d| d.len()).unwrap_or(0) as u64;
        build_pbnode(self.p.prefix, &[], &unixfs_data(typ, data, Some(len), &[]))
    }

    fn new_leaf_data_node(&mut self, typ: u64) -> Result<(Built, u64), GoErr> {
        let data = self.next()?;
        let n = data.len() as u64;
        Ok((self.new_leaf_node(Some(&data), typ), n))
    }

    fn fill_node_layer(&mut self, node: &mut FsNode) -> Result<(), GoErr> {
        while node.links.len() < self.p.max_links && !self.done() {
            let (child, fs) = self.new_leaf_data_node(T_RAW)?;
            node.add_child(child, fs);
        }
        Ok(())
    }
}

/// `FSNodeOverDag` of type File.
struct FsNode {
    links: Vec<Link>,
    blocksizes: Vec<u64>,
}

impl FsNode {
    fn new() -> Self {
        FsNode { links: Vec::new(), blocksizes: Vec::new() }
    }
    fn add_child(&mut self, child: Built, file_size: u64) {
        self.links.push(Link { cid: child.cid, name: Vec::new(), tsize: child.size });
        self.blocksizes.push(file_size);
    }
    fn file_size(&self) -> u64 {
        self.blocksizes.iter().sum()
    }
    fn commit(&self, prefix: Prefix) -> Built {
        let data = unixfs_data(T_FILE, None, Some(self.file_size()), &self.blocksizes);
        build_pbnode(prefix, &self.links, &data)
    }
}

fn fill_node_rec(db: &mut Db, node: Option<FsNode>, depth: usize) -> Result<(Built, u64), GoErr> {
    let mut node = node.unwrap_or_else(FsNode::new);
    while node.links.len() < db.p.max_links && !db.done() {
        let (child, fs) = if depth == 1 {
            db.new_leaf_data_node(T_FILE)?
        } else {
            fill_node_rec(db, None, depth - 1)?
        };
        node.add_child(child, fs);
    }
    let fs = node.file_size();
    Ok((node.commit(db.p.prefix), fs))
}

fn balanced(db: &mut Db) -> Result<Built, GoErr> {
    if db.done() {
        return Ok(db.new_leaf_node(None, T_FILE));
    }
    let (mut root, mut fs) = db.new_leaf_data_node(T_FILE)?;
    let mut depth = 1;
    while !db.done() {
        let mut new_root = FsNode::new();
        new_root.add_child(root, fs);
        let (r, f) = fill_node_rec(db, Some(new_root), depth)?;
        root = r;
        fs = f;
        depth += 1;
    }
    Ok(root)
}

const DEPTH_REPEAT: usize = 4;

fn fill_trickle_rec(db: &mut Db, mut node: FsNode, max_depth: i64) -> Result<(Built, u64), GoErr> {
    db.fill_node_layer(&mut node)?;
    let mut depth: i64 = 1;
    while max_depth == -1 || depth < max_depth {
        if db.done() {
            break;
        }
        let mut i = 0;
        while i < DEPTH_REPEAT && !db.done() {
            let (child, fs) = fill_trickle_rec(db, FsNode::new(), depth)?;
            node.add_child(child, fs);
            i += 1;
        }
        depth += 1;
    }
    let fs = node.file_size();
    Ok((node.commit(db.p.prefix), fs))
}

/// Import one file read through `r` (`chunker.FromString` already validated to a size
/// splitter). Errors are the reader's errors, as boxo returns them.
pub fn import_file(r: &mut dyn GoRead, p: FileParams) -> Result<Built, GoErr> {
    let mut db = Db { r, size: p.chunk_size, spl_err: None, next_data: None, recvd_err: None, p };
    if p.trickle {
        Ok(fill_trickle_rec(&mut db, FsNode::new(), -1)?.0)
    } else {
        balanced(&mut db)
    }
}

/// What `chunker.FromString` (boxo chunker/parse.go) makes of a chunker string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkerSpec {
    Size(usize),
    /// rabin / buzhash: valid upstream, not implemented by the stand-ins.
    Unsupported(String),
}

pub fn parse_chunker(s: &str) -> Result<ChunkerSpec, String> {
    if s.is_empty() || s == "default" {
        return Ok(ChunkerSpec::Size(DEFAULT_CHUNK));
    }
    let name = s.split('-').next().unwrap_or("");
    match name {
        "size" => {
            let parts: Vec<&str> = s.split('-').collect();
            if parts.len() != 2 {
                return Err("incorrect chunker string format (expected size-{size})".into());
            }
            let size = crate::gofmt::atoi(parts[1]);
            match size {
                None => Err(format!("strconv.Atoi: parsing {}: {}", crate::gofmt::go_quote(parts[1].as_bytes()), atoi_err_kind(parts[1]))),
                Some(n) if n <= 0 => Err("chunker size must be greater than 0".into()),
                Some(n) if n > CHUNK_SIZE_LIMIT => Err(format!(
                    "chunker parameters may not exceed the maximum chunk size of {}",
                    CHUNK_SIZE_LIMIT
                )),
                Some(n) => Ok(ChunkerSpec::Size(n as usize)),
            }
        }
        "rabin" | "buzhash" => Ok(ChunkerSpec::Unsupported(s.to_string())),
        _ => Err(format!("unrecognized chunker option: {}", s)),
    }
}

/// strconv.NumError reason: "value out of range" for well-formed but too large numbers.
fn atoi_err_kind(s: &str) -> &'static str {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        "value out of range"
    } else {
        "invalid syntax"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem {
        data: Vec<u8>,
        pos: usize,
    }
    impl GoRead for Mem {
        fn go_read(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
            // Like multipart: at most 4096 bytes per read.
            let n = buf.len().min(self.data.len() - self.pos).min(4096);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.data.len() {
                (n, Some(GoErr::Eof))
            } else {
                (n, None)
            }
        }
    }

    fn add(data: &[u8], p: FileParams) -> Built {
        import_file(&mut Mem { data: data.to_vec(), pos: 0 }, p).unwrap()
    }

    fn v1raw() -> FileParams {
        FileParams { prefix: Prefix { version: 1 }, raw_leaves: true, ..Default::default() }
    }

    #[test]
    fn well_known_cids() {
        let d = FileParams::default();
        // Kubo's own help text: empty file.
        let e = add(b"", d);
        assert_eq!(e.cid.to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        assert_eq!(e.size, 6);
        assert_eq!(add(b"hello world", d).cid.to_string(), "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD");
        assert_eq!(add(b"hello world\n", d).cid.to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
        assert_eq!(add(b"hello world\n", d).size, 20);
        // CIDv1 + raw leaves: a single raw block.
        assert_eq!(add(b"", v1raw()).cid.to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        assert_eq!(add(b"", v1raw()).size, 0);
        assert_eq!(add(b"hello world", v1raw()).cid.to_string(), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
        // Empty directory.
        let dir = build_dir(Prefix { version: 0 }, &[]);
        assert_eq!(dir.cid.to_string(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
        assert_eq!(dir.size, 4);
        assert_eq!(build_dir(Prefix { version: 1 }, &[]).cid.to_string(), "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354");
    }

    #[test]
    fn matches_ipfs_unixfs_crate_for_cidv0() {
        // ipfs-unixfs 0.2 FileAdder reproduces Kubo's default CIDv0 (test-infra.md).
        for len in [1usize, 262143, 262144, 262145, 600_000, 174 * 262144 + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut adder = ipfs_unixfs::file::adder::FileAdder::default();
            let mut blocks = Vec::new();
            let mut off = 0;
            while off < data.len() {
                let (b, n) = adder.push(&data[off..]);
                blocks.extend(b);
                off += n;
            }
            blocks.extend(adder.finish());
            let (last_cid, last_block) = blocks.last().unwrap();
            let ours = add(&data, FileParams::default());
            assert_eq!(ours.cid.to_string(), last_cid.to_string(), "len {}", len);
            // Root's cumulative size = all distinct blocks (no dedup in this data).
            let total: usize = blocks.iter().map(|(_, b)| b.len()).sum();
            assert_eq!(ours.size, total as u64, "len {}", len);
            let _ = last_block;
        }
    }

    #[test]
    fn two_chunks_overhead_132() {
        // add-compat.md: CIDv0 Size = content + dag-pb overhead, +132 for two chunks.
        // (two full-size chunks: 14 bytes per leaf, 104 for the root)
        let data = vec![b'x'; 2 * 262144];
        assert_eq!(add(&data, FileParams::default()).size, 2 * 262144 + 132);
    }

    #[test]
    fn trickle_differs_and_is_stable() {
        let t = FileParams { trickle: true, ..Default::default() };
        // An empty trickle root has the same bytes as the balanced empty leaf.
        assert_eq!(add(b"", t).cid.to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        // One chunk: a File root with one Raw leaf, unlike balanced.
        assert_ne!(add(b"hello world", t).cid, add(b"hello world", FileParams::default()).cid);
    }

    #[test]
    fn chunker_errors() {
        assert_eq!(parse_chunker("foo").unwrap_err(), "unrecognized chunker option: foo");
        assert_eq!(parse_chunker("size-0").unwrap_err(), "chunker size must be greater than 0");
        assert_eq!(parse_chunker("size-abc").unwrap_err(), "strconv.Atoi: parsing \"abc\": invalid syntax");
        assert_eq!(parse_chunker("size-1-2").unwrap_err(), "incorrect chunker string format (expected size-{size})");
        assert_eq!(
            parse_chunker("size-3000000").unwrap_err(),
            "chunker parameters may not exceed the maximum chunk size of 2096896"
        );
        assert_eq!(parse_chunker("size-1024"), Ok(ChunkerSpec::Size(1024)));
        assert_eq!(parse_chunker(""), Ok(ChunkerSpec::Size(262144)));
    }
}
