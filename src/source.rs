//! Manifest sources held in memory: files, their text and byte spans into them.
//!
//! Everything downstream (parsing, validation, diagnostics) refers to text through [`Loc`], so
//! reading files is the only I/O and happens once, at the edge (`crate::load`).

use std::fmt;

/// Index of a file in a [`SourceSet`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct FileId(pub u32);

/// A byte range in one source file; what every diagnostic points at.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Loc {
    pub file: FileId,
    pub offset: u32,
    pub len: u32,
}

impl Loc {
    pub fn new(file: FileId, offset: usize, len: usize) -> Self {
        Loc {
            file,
            offset: offset as u32,
            len: len as u32,
        }
    }

    /// The start of a file, for problems that belong to a whole file (unreadable, not UTF-8).
    pub fn file_start(file: FileId) -> Self {
        Loc::new(file, 0, 0)
    }
}

/// A decoded value with the place it came from, so semantic checks can point at it.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: serde::Serialize> serde::Serialize for Located<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<T: fmt::Display> fmt::Display for Located<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// Where a file's text can be read again after [`SourceSet::release_texts`] let it go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Only in memory (standard input, tests): its text is never released.
    Memory,
    // No path of its own where the file's display path is its path, boxed slices, and one
    // repository path shared by every blob: a run keeps one of these per manifest file
    // (10,000 and more in a large tree).
    /// A file in the work tree at the file's path (a UTF-8 path: its display path is exact).
    WorkTree,
    /// A file in the work tree whose path is not UTF-8 (its display path is not exact).
    Path(Box<std::path::Path>),
    /// A blob of the git repository at `repository` (its object id in hex).
    GitBlob {
        repository: std::sync::Arc<std::path::Path>,
        blob: Box<str>,
    },
}

/// One manifest file: its display path and its text (already checked to be UTF-8).
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: String,
    /// Empty once released (see [`SourceSet::release_texts`]) until read again for a
    /// diagnostic.
    pub text: String,
    /// False when the file could not be read whole (too large, not UTF-8): it is kept only so
    /// diagnostics can point into it, and is never parsed.
    pub parse: bool,
    pub origin: Origin,
    /// The text's hash while it is released, so the text read again is known to be the one
    /// that was parsed.
    released: Option<u64>,
    /// Not read yet: large trees are read a chunk of files at a time as they are parsed
    /// (`load::read_texts`), so a run never holds every file's text at once.
    unread: bool,
    /// Computed on the first diagnostic that needs a line number: a valid tree never pays for
    /// it (about 2 KB a file, 20 MB for a 10,000-tenant tree).
    line_starts: std::sync::OnceLock<Box<[u32]>>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
            parse: true,
            origin: Origin::Memory,
            released: None,
            unread: false,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    /// A file whose text can be read again from `origin` once released.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Whether the text was let go and not read again yet.
    pub fn is_released(&self) -> bool {
        self.released.is_some()
    }

    /// A file known by its path and origin whose text is read when it is parsed.
    pub fn unread(path: impl Into<String>, origin: Origin) -> Self {
        SourceFile {
            unread: true,
            ..SourceFile::new(path, "").with_origin(origin)
        }
    }

    /// Whether its text is still to be read (see [`SourceFile::unread`]).
    pub fn is_unread(&self) -> bool {
        self.unread
    }

    /// Gives an unread file its text.
    pub fn set_text(&mut self, text: String) {
        self.text = text;
        self.unread = false;
    }

    /// Marks an unread file as kept for diagnostics only, with what could be read of it.
    pub fn set_unparsable(&mut self, text: String) {
        self.set_text(text);
        self.parse = false;
    }

    fn line_starts(&self) -> &[u32] {
        self.line_starts.get_or_init(|| {
            let mut starts = vec![0u32];
            starts.extend(
                self.text
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| (i + 1) as u32),
            );
            starts.into_boxed_slice()
        })
    }

    fn release(&mut self) {
        if self.parse && !self.unread && self.origin != Origin::Memory && self.released.is_none() {
            self.released = Some(text_hash(&self.text));
            self.text = String::new();
        }
    }

    /// A file kept for diagnostics only (see [`SourceFile::parse`]).
    pub fn unparsable(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            parse: false,
            ..SourceFile::new(path, text)
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let line_starts = self.line_starts();
        let line = match line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = line_starts[line] as usize;
        let end = (offset as usize).min(self.text.len());
        let column = self
            .text
            .get(start..end)
            .map_or(end - start, |s| s.chars().count());
        (line + 1, column + 1)
    }

    /// The text a location covers (empty when the location is out of range).
    pub fn slice(&self, loc: Loc) -> &str {
        let start = loc.offset as usize;
        let end = start + loc.len as usize;
        self.text.get(start..end).unwrap_or("")
    }
}

/// All the files of one run, addressed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceSet {
    files: Vec<SourceFile>,
}

impl SourceSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `more` files, exactly: a tree's files are counted before they are added.
    pub fn reserve_exact(&mut self, more: usize) {
        self.files.reserve_exact(more);
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId((self.files.len() - 1) as u32)
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Lets go of the text of every parsed file that can be read again (not standard input):
    /// once parsed, a large tree's text (80 MB at 10,000 tenants) is needed only by the
    /// diagnostics that point into it, which [`SourceSet::restore`] reads back.
    pub fn release_texts(&mut self) {
        for file in &mut self.files {
            file.release();
        }
    }

    /// Lets go of the texts of `ids` (see [`SourceSet::release_texts`]).
    pub fn release(&mut self, ids: &[FileId]) {
        for id in ids {
            self.files[id.0 as usize].release();
        }
    }

    pub fn file_mut(&mut self, id: FileId) -> &mut SourceFile {
        &mut self.files[id.0 as usize]
    }

    /// The released files that `diagnostics` point into (each once, in order).
    pub fn released_in(&self, diagnostics: &[crate::diagnostic::Diagnostic]) -> Vec<FileId> {
        let ids: std::collections::BTreeSet<FileId> = diagnostics
            .iter()
            .flat_map(|d| d.labels.iter().map(|l| l.loc.file))
            .filter(|id| self.file(*id).is_released())
            .collect();
        ids.into_iter().collect()
    }

    /// Puts back a released file's text, read again from its origin. False (and the text left
    /// empty) when it is not the text that was parsed: the file changed in the meantime.
    pub fn restore(&mut self, id: FileId, text: String) -> bool {
        let file = &mut self.files[id.0 as usize];
        match file.released {
            Some(hash) if hash == text_hash(&text) => {
                file.text = text;
                file.released = None;
                file.line_starts = std::sync::OnceLock::new();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// `path:line:column` of a location, the form editors and CI annotations understand.
    pub fn describe(&self, loc: Loc) -> String {
        let file = self.file(loc.file);
        let (line, column) = file.line_col(loc.offset);
        format!("{}:{}:{}", file.path, line, column)
    }
}

/// A hash of a file's text, to recognise it when it is read again in the same run.
fn text_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
