//! A byte-span index of a document's elements, and span edits that keep every other byte.
//!
//! One quick-xml pass records where each element's tags start and end; nothing is copied. A
//! rewrite is a list of [`Edit`]s (replace a byte range with new text) applied in one copy.

use crate::{Error, Result};
use quick_xml::events::Event;
use std::borrow::Cow;

/// "No element" in the index's links.
pub(crate) const NONE: u32 = u32::MAX;

/// One element: byte offsets into the source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elem {
    /// The `<` of the start tag.
    pub start: usize,
    /// Just after the start tag's `>`.
    pub open_end: usize,
    /// The `<` of the end tag (equals `open_end` for `<x/>`).
    pub close_start: usize,
    /// Just after the element's last `>`.
    pub end: usize,
    /// Length of the qualified name.
    pub name_len: u32,
    pub first_child: u32,
    pub next_sibling: u32,
}

impl Elem {
    pub fn is_empty_tag(&self) -> bool {
        self.open_end == self.end
    }
}

/// The element index of a well-formed document.
pub(crate) struct Doc<'a> {
    pub src: &'a str,
    pub elems: Vec<Elem>,
    pub root: usize,
}

// Scratch buffers kept per thread between calls: a rewrite's few large buffers (the element
// index, the edit texts) would otherwise be allocated and freed on every call, and allocator
// work is a good part of a rewrite's time. Contents never survive a call; only capacity does.
thread_local! {
    static ELEMS: std::cell::Cell<Vec<Elem>> = const { std::cell::Cell::new(Vec::new()) };
    static EDIT_SPANS: std::cell::Cell<Vec<[usize; 4]>> = const { std::cell::Cell::new(Vec::new()) };
    static EDIT_TEXT: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// Buffers above this many bytes go back to the allocator instead of the pool.
const POOL_MAX_BYTES: usize = 1 << 20;

/// An empty element list with room for `n`, from the pool when it holds one.
fn pooled_elems(n: usize) -> Vec<Elem> {
    let mut v = ELEMS.with(std::cell::Cell::take);
    v.clear();
    v.reserve(n);
    v
}

impl Drop for Doc<'_> {
    fn drop(&mut self) {
        if self.elems.capacity() * std::mem::size_of::<Elem>() <= POOL_MAX_BYTES {
            let v = std::mem::take(&mut self.elems);
            ELEMS.with(|c| c.set(v));
        }
    }
}

fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = src.as_bytes().get(..pos).unwrap_or_default();
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = pos
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

fn xml_err(src: &str, pos: usize, what: impl std::fmt::Display) -> Error {
    let (line, col) = line_col(src, pos);
    let msg = what.to_string().replace('\n', " ");
    Error::Xml(format!("{msg} at line {line}, column {col}"))
}

impl<'a> Doc<'a> {
    /// Indexes `src`; any well-formedness error is `Error::Xml` with its line and column.
    pub fn parse(src: &'a str) -> Result<Doc<'a>> {
        // The fast scanner accepts plain documents only (a subset of what quick-xml accepts);
        // anything else, errors included, goes through quick-xml.
        match Self::scan(src) {
            Some(doc) => Ok(doc),
            None => Self::parse_quick_xml(src),
        }
    }

    /// One byte scan for the common case: elements, whitespace and text, simple character
    /// references, comments, CDATA inside the root and processing instructions. `None` for
    /// anything else (a DOCTYPE, a byte-order mark, any error), so quick-xml decides it.
    pub(crate) fn scan(src: &'a str) -> Option<Doc<'a>> {
        let b = src.as_bytes();
        let mut elems = pooled_elems(src.len() / 40 + 8);
        // Open elements as (index, last child); deeper documents go to quick-xml.
        let mut stack = Stack::default();
        let mut root = NONE;
        let mut i = 0;
        loop {
            // Text up to the next '<'.
            let ts = i;
            let mut amp = false;
            loop {
                i = find2(b, i, b'<', b'&');
                if i < b.len() && b[i] == b'&' {
                    amp = true;
                    i += 1;
                } else {
                    break;
                }
            }
            if stack.is_empty() {
                if !b[ts..i].iter().all(|c| c.is_ascii_whitespace()) {
                    return None;
                }
            } else if amp && !simple_refs(&b[ts..i]) {
                return None;
            }
            if i >= b.len() {
                break;
            }
            let lt = i;
            match *b.get(lt + 1)? {
                b'/' => {
                    let &(idx, _) = stack.last()?;
                    // The expected name, then optional whitespace, then '>'.
                    let e = elems[idx as usize];
                    let name = &b[e.start + 1..e.start + 1 + e.name_len as usize];
                    let ne = lt + 2 + name.len();
                    if !short_eq(b.get(lt + 2..ne)?, name) {
                        return None;
                    }
                    let mut gt = ne;
                    while CLASS[usize::from(*b.get(gt)?)] & WS != 0 {
                        gt += 1;
                    }
                    if b[gt] != b'>' {
                        return None;
                    }
                    stack.pop();
                    let el = &mut elems[idx as usize];
                    el.close_start = lt;
                    el.end = gt + 1;
                    i = gt + 1;
                }
                b'!' => {
                    let rest = &src[lt..];
                    if let Some(body) = rest.strip_prefix("<!--") {
                        i = lt + 4 + body.find("-->")? + 3;
                    } else if let Some(body) = rest.strip_prefix("<![CDATA[")
                        && !stack.is_empty()
                    {
                        i = lt + 9 + body.find("]]>")? + 3;
                    } else {
                        return None;
                    }
                }
                b'?' => {
                    if !b.get(lt + 2)?.is_ascii_alphabetic() {
                        return None;
                    }
                    i = lt + 2 + src[lt + 2..].find("?>")? + 2;
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let ns = lt + 1;
                    let mut j = ns;
                    // Four bytes per branch, then the rest one by one.
                    while let Some(w) = b.get(j..j + 4) {
                        let c = |k: usize| CLASS[usize::from(w[k])];
                        if c(0) & c(1) & c(2) & c(3) & NAME == 0 {
                            break;
                        }
                        j += 4;
                    }
                    while j < b.len() && CLASS[usize::from(b[j])] & NAME != 0 {
                        j += 1;
                    }
                    match *b.get(j)? {
                        b'/' | b'>' => {}
                        c if c.is_ascii_whitespace() => {}
                        _ => return None,
                    }
                    let name_len = j - ns;
                    let gt = match tag_attrs(src, lt, src.len(), name_len) {
                        Ok(gt) => gt,
                        Err(_) => return None,
                    };
                    let after = lt + gt + 1;
                    let empty = b[after - 2] == b'/';
                    let idx = elems.len() as u32;
                    if !link(&mut elems, stack.last_mut(), &mut root, idx) {
                        return None;
                    }
                    elems.push(Elem {
                        start: lt,
                        open_end: after,
                        close_start: after,
                        end: after,
                        name_len: name_len as u32,
                        first_child: NONE,
                        next_sibling: NONE,
                    });
                    if !empty {
                        stack.push((idx, NONE))?;
                    }
                    i = after;
                }
                _ => return None,
            }
        }
        if !stack.is_empty() || root == NONE {
            return None;
        }
        Some(Doc {
            src,
            elems,
            root: root as usize,
        })
    }

    pub(crate) fn parse_quick_xml(src: &'a str) -> Result<Doc<'a>> {
        let mut reader = quick_xml::Reader::from_str(src);
        let mut elems = pooled_elems(src.len() / 40 + 8);
        // Stack of (element index, last child index).
        let mut stack: Vec<(u32, u32)> = Vec::with_capacity(16);
        let mut root = NONE;
        loop {
            let pos = reader.buffer_position() as usize;
            let ev = reader
                .read_event()
                .map_err(|e| xml_err(src, reader.error_position() as usize, e))?;
            let after = reader.buffer_position() as usize;
            match ev {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let name_len = e.name().as_ref().len();
                    if let Some((off, what)) = check_attrs(src, pos, after, name_len) {
                        return Err(xml_err(src, off, what));
                    }
                    let idx = elems.len() as u32;
                    let empty = matches!(ev, Event::Empty(_));
                    if !link(&mut elems, stack.last_mut(), &mut root, idx) {
                        return Err(xml_err(src, pos, "a second root element"));
                    }
                    elems.push(Elem {
                        start: pos,
                        open_end: after,
                        close_start: after,
                        end: after,
                        name_len: name_len as u32,
                        first_child: NONE,
                        next_sibling: NONE,
                    });
                    if !empty {
                        stack.push((idx, NONE));
                    }
                }
                Event::End(_) => {
                    let Some((idx, _)) = stack.pop() else {
                        return Err(xml_err(src, pos, "an end tag without a start tag"));
                    };
                    let el = &mut elems[idx as usize];
                    el.close_start = pos;
                    el.end = after;
                }
                Event::Text(ref t)
                    if stack.is_empty() && !t.iter().all(|b| b.is_ascii_whitespace()) =>
                {
                    return Err(xml_err(src, pos, "text outside the root element"));
                }
                Event::CData(_) | Event::GeneralRef(_) if stack.is_empty() => {
                    return Err(xml_err(src, pos, "content outside the root element"));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if let Some(&(idx, _)) = stack.last() {
            let e = elems[idx as usize];
            let name = src
                .get(e.start + 1..e.start + 1 + e.name_len as usize)
                .unwrap_or("?");
            return Err(xml_err(
                src,
                e.start,
                format!("element <{name}> is never closed"),
            ));
        }
        if root == NONE {
            return Err(xml_err(src, src.len(), "no root element"));
        }
        Ok(Doc {
            src,
            elems,
            root: root as usize,
        })
    }

    pub fn el(&self, i: usize) -> &Elem {
        &self.elems[i]
    }

    pub fn name(&self, i: usize) -> &'a str {
        let e = &self.elems[i];
        self.src
            .get(e.start + 1..e.start + 1 + e.name_len as usize)
            .unwrap_or("")
    }

    /// The whole element's bytes.
    pub fn outer(&self, i: usize) -> &'a str {
        let e = &self.elems[i];
        self.src.get(e.start..e.end).unwrap_or("")
    }

    /// The start tag's bytes (`<x a='1'>` or `<x/>`).
    pub fn open_tag(&self, i: usize) -> &'a str {
        let e = &self.elems[i];
        self.src.get(e.start..e.open_end).unwrap_or("")
    }

    pub fn children(&self, i: usize) -> Children<'_, 'a> {
        Children {
            doc: self,
            next: self.elems[i].first_child,
        }
    }

    pub fn child(&self, i: usize, name: &str) -> Option<usize> {
        self.children(i).find(|&c| self.name(c) == name)
    }

    pub fn attr(&self, i: usize, key: &str) -> Option<Cow<'a, str>> {
        let tag = self.open_tag(i);
        let (b, k) = (tag.as_bytes(), key.as_bytes());
        // First byte and length before the full compare: most keys differ there.
        scan_attrs(tag, self.elems[i].name_len as usize)
            .find(|a| {
                a.key.end - a.key.start == k.len()
                    && b.get(a.key.start) == k.first()
                    && short_eq(&b[a.key.clone()], k)
            })
            .map(|a| unescape_lossy(&tag[a.val.clone()]))
    }

    /// The element's character content with entities resolved; `None` when it holds markup
    /// other than text (child elements, comments, CDATA).
    pub fn text(&self, i: usize) -> Option<Cow<'a, str>> {
        let e = &self.elems[i];
        let raw = self.src.get(e.open_end..e.close_start)?;
        if raw.contains('<') {
            return None;
        }
        Some(unescape_lossy(raw))
    }

    /// The element's character content when it is text and CDATA sections only (CDATA kept
    /// verbatim, text unescaped); `None` when it holds elements or comments.
    pub fn text_or_cdata(&self, i: usize) -> Option<String> {
        let e = &self.elems[i];
        let mut raw = self.src.get(e.open_end..e.close_start)?;
        let mut out = String::with_capacity(raw.len());
        while !raw.is_empty() {
            match raw.find('<') {
                None => {
                    out.push_str(&unescape_lossy(raw));
                    break;
                }
                Some(p) => {
                    out.push_str(&unescape_lossy(&raw[..p]));
                    let rest = raw[p..].strip_prefix("<![CDATA[")?;
                    let end = rest.find("]]>")?;
                    out.push_str(&rest[..end]);
                    raw = &rest[end + 3..];
                }
            }
        }
        Some(out)
    }

    /// Whitespace immediately before `pos`, back to the previous non-whitespace byte.
    pub fn ws_before(&self, pos: usize) -> usize {
        let b = self.src.as_bytes();
        let mut p = pos.min(b.len());
        while p > 0 && b[p - 1].is_ascii_whitespace() {
            p -= 1;
        }
        p
    }

    /// The indentation of the line `pos` starts on, when only whitespace precedes it there.
    pub fn indent_of(&self, pos: usize) -> &'a str {
        let b = self.src.as_bytes();
        let mut p = pos.min(b.len());
        while p > 0 && (b[p - 1] == b' ' || b[p - 1] == b'\t') {
            p -= 1;
        }
        if p == 0 || b[p - 1] == b'\n' {
            self.src.get(p..pos).unwrap_or("")
        } else {
            ""
        }
    }

    /// The separator to put before a new element placed next to `sibling`: the whitespace that
    /// precedes the sibling (a newline and its indentation, usually).
    pub fn sep_before(&self, sibling: usize) -> &'a str {
        let s = self.elems[sibling].start;
        self.src.get(self.ws_before(s)..s).unwrap_or("")
    }
}

/// Links element `idx` (about to be pushed) into the tree: as the next sibling of the open
/// element's last child, as its first child, or as the root when nothing is open. `top` is the
/// innermost open element and its last child so far. `false`: a second root element.
fn link(elems: &mut [Elem], top: Option<&mut (u32, u32)>, root: &mut u32, idx: u32) -> bool {
    let (parent, prev) = match top {
        Some((p, last)) => (*p, std::mem::replace(last, idx)),
        None if *root != NONE => return false,
        None => {
            *root = idx;
            (NONE, NONE)
        }
    };
    if prev != NONE {
        elems[prev as usize].next_sibling = idx;
    } else if parent != NONE {
        elems[parent as usize].first_child = idx;
    }
    true
}

/// The scanner's stack of open elements, without a heap allocation.
struct Stack {
    items: [(u32, u32); 64],
    len: usize,
}

impl Default for Stack {
    fn default() -> Self {
        Stack {
            items: [(NONE, NONE); 64],
            len: 0,
        }
    }
}

impl Stack {
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn last(&self) -> Option<&(u32, u32)> {
        self.len.checked_sub(1).map(|i| &self.items[i])
    }
    fn last_mut(&mut self) -> Option<&mut (u32, u32)> {
        self.len.checked_sub(1).map(|i| &mut self.items[i])
    }
    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
    /// `None` when full.
    fn push(&mut self, v: (u32, u32)) -> Option<()> {
        *self.items.get_mut(self.len)? = v;
        self.len += 1;
        Some(())
    }
}

pub(crate) struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    next: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next == NONE {
            return None;
        }
        let i = self.next as usize;
        self.next = self.doc.elems[i].next_sibling;
        Some(i)
    }
}

/// Byte equality of two short strings (names, keys) as an inline loop: no call into the C
/// library's `memcmp`, which costs more than the compare itself at these lengths.
#[inline]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

pub(crate) fn unescape_lossy(raw: &str) -> Cow<'_, str> {
    // Values are short and rarely hold a reference: a plain scan first (a table look-up per
    // byte; a value holds no '<', so the text-end class finds exactly the '&').
    if !raw.bytes().any(|c| CLASS[usize::from(c)] & TEXT_END != 0) {
        return Cow::Borrowed(raw);
    }
    quick_xml::escape::unescape(raw).unwrap_or(Cow::Borrowed(raw))
}

/// Checks the attributes of the start tag `src[start..end]` strictly (quoted values, no `<` in
/// values, no duplicate names) without allocating. Returns the offending offset and why.
fn check_attrs(
    src: &str,
    start: usize,
    end: usize,
    name_len: usize,
) -> Option<(usize, &'static str)> {
    tag_attrs(src, start, end, name_len).err()
}

/// [`check_attrs`] over `src[start..end]`, which may run past the tag: `Ok` is the offset of
/// the tag's `>` from `start`.
fn tag_attrs(
    src: &str,
    start: usize,
    end: usize,
    name_len: usize,
) -> std::result::Result<usize, (usize, &'static str)> {
    let Some(tag) = src.get(start..end) else {
        return Err((start, "a start tag is cut short"));
    };
    let b = tag.as_bytes();
    let mut i = 1 + name_len;
    if b.get(i) == Some(&b'>') {
        return Ok(i);
    }
    // A 64-bit fingerprint set of the names seen; only a fingerprint hit compares names.
    let mut seen = 0u64;
    loop {
        let ws = i;
        while i < b.len() && CLASS[usize::from(b[i])] & WS != 0 {
            i += 1;
        }
        match b.get(i) {
            None => return Err((start + i, "a start tag is cut short")),
            Some(b'>') => return Ok(i),
            Some(b'/') => {
                return if b.get(i + 1) == Some(&b'>') {
                    Ok(i + 1)
                } else {
                    Err((start + i, "'/' inside a tag"))
                };
            }
            _ => {}
        }
        if ws == i {
            return Err((start + i, "attributes must be separated by whitespace"));
        }
        let ks = i;
        while let Some(w) = b.get(i..i + 4) {
            let c = |k: usize| CLASS[usize::from(w[k])];
            if (c(0) | c(1) | c(2) | c(3)) & KEY_END != 0 {
                break;
            }
            i += 4;
        }
        while i < b.len() && CLASS[usize::from(b[i])] & KEY_END == 0 {
            i += 1;
        }
        let ke = i;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if ke == ks || b.get(i) != Some(&b'=') {
            return Err((start + ks, "an attribute without a value"));
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let q = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err((start + i, "an attribute value without quotes")),
        };
        // Values are short: a plain loop beats a searcher here.
        let vs = i + 1;
        let j = find2(b, vs, q, b'<');
        if j >= b.len() {
            return Err((start + i, "an unterminated attribute value"));
        }
        if b[j] == b'<' {
            return Err((start + j, "'<' in an attribute value"));
        }
        i = j + 1;
        let key = &b[ks..ke];
        let fp = 1u64
            << ((usize::from(key[0]) * 7 + key.len() * 13 + usize::from(key[key.len() - 1])) % 64);
        let dup = seen & fp != 0
            && scan_attrs(tag.get(..ks).unwrap_or(""), name_len)
                .any(|a| a.key.end - a.key.start == key.len() && &b[a.key] == key);
        seen |= fp;
        if dup {
            return Err((start + ks, "a duplicated attribute"));
        }
    }
}

/// The first index at or after `i` where `b` holds `x` or `y` (`b.len()` when none), eight
/// bytes at a time (SWAR: a word XORed with the byte broadcast has a zero byte where it matched;
/// the lowest flagged byte of the zero test is exact, so its position is the first match).
#[inline(always)]
pub(crate) fn find2(b: &[u8], mut i: usize, x: u8, y: u8) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (bx, by) = (LO * u64::from(x), LO * u64::from(y));
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let (a, c) = (w ^ bx, w ^ by);
        let z = ((a.wrapping_sub(LO) & !a) | (c.wrapping_sub(LO) & !c)) & HI;
        if z != 0 {
            return i + (z.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != x && b[i] != y {
        i += 1;
    }
    i.min(b.len())
}

/// Byte classes for the scanner: one table look-up instead of a chain of compares.
const NAME: u8 = 1;
const WS: u8 = 2;
const KEY_END: u8 = 4;
const ESCAPE: u8 = 8;
/// `<` and `&`: where a run of text ends or needs a look.
const TEXT_END: u8 = 16;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.') {
            k |= NAME;
        }
        if b.is_ascii_whitespace() {
            k |= WS | KEY_END;
        }
        if matches!(b, b'=' | b'>' | b'/' | b'<' | b'"' | b'\'') {
            k |= KEY_END;
        }
        if matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'') {
            k |= ESCAPE;
        }
        if matches!(b, b'<' | b'&') {
            k |= TEXT_END;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// Whether every `&` in a text run starts a plain reference (`&name;`, `&#n;`, `&#xh;`).
fn simple_refs(t: &[u8]) -> bool {
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'&' {
            let s = i + 1;
            let mut j = s;
            while j < t.len() && (t[j].is_ascii_alphanumeric() || t[j] == b'#') {
                j += 1;
            }
            if j == s || t.get(j) != Some(&b';') {
                return false;
            }
            i = j;
        }
        i += 1;
    }
    true
}

/// Byte spans of one attribute inside a start tag.
#[derive(Debug, Clone)]
pub(crate) struct AttrSpan {
    /// From the whitespace before the key to just after the closing quote.
    pub whole: std::ops::Range<usize>,
    pub key: std::ops::Range<usize>,
    /// Inside the quotes.
    pub val: std::ops::Range<usize>,
    pub quote: u8,
}

/// The attributes of a start tag quick-xml has already checked (`tag` is the whole `<...>`).
pub(crate) fn scan_attrs(tag: &str, name_len: usize) -> impl Iterator<Item = AttrSpan> + '_ {
    let b = tag.as_bytes();
    let mut i = 1 + name_len;
    std::iter::from_fn(move || {
        let ws = i;
        while i < b.len() && CLASS[usize::from(b[i])] & WS != 0 {
            i += 1;
        }
        if i >= b.len() || b[i] == b'>' || b[i] == b'/' {
            return None;
        }
        let ks = i;
        // A checked tag's keys hold none of the other key-ending bytes (`>/<"'`).
        while i < b.len() && CLASS[usize::from(b[i])] & KEY_END == 0 {
            i += 1;
        }
        let ke = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let quote = *b.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let vs = i + 1;
        let ve = find2(b, vs, quote, quote);
        if ve >= b.len() {
            return None;
        }
        i = ve + 1;
        Some(AttrSpan {
            whole: ws..i,
            key: ks..ke,
            val: vs..ve,
            quote,
        })
    })
}

/// Appends a start tag with its attributes rewritten: `Some(v)` sets (in place, keeping the
/// quote, or appended with the tag's quote style), `None` removes. Other bytes of the tag are kept.
pub(crate) fn edit_tag_into(
    out: &mut String,
    tag: &str,
    name_len: usize,
    sets: &[(&str, Option<&str>)],
) {
    let mut quote = b'\'';
    let mut attrs_end = 1 + name_len;
    let mut seen = 0u32;
    let mut pos = 0;
    for (n, a) in scan_attrs(tag, name_len).enumerate() {
        if n == 0 {
            quote = a.quote;
        }
        attrs_end = a.whole.end;
        let key = &tag[a.key.clone()];
        if let Some(j) = sets.iter().position(|(k, _)| *k == key) {
            seen |= 1 << j.min(31);
            match sets[j].1 {
                Some(v) => {
                    out.push_str(&tag[pos..a.val.start]);
                    push_attr_value(out, v, a.quote);
                    pos = a.val.end;
                }
                None => {
                    out.push_str(&tag[pos..a.whole.start]);
                    pos = a.whole.end;
                }
            }
        }
    }
    out.push_str(&tag[pos..attrs_end]);
    for (j, (k, v)) in sets.iter().enumerate() {
        if let Some(v) = v
            && seen & (1 << j.min(31)) == 0
        {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push(quote as char);
            push_attr_value(out, v, quote);
            out.push(quote as char);
        }
    }
    out.push_str(&tag[attrs_end..]);
}

fn push_attr_value(out: &mut String, v: &str, quote: u8) {
    out.push_str(&escape_attr(v, quote));
}

fn escape_attr(v: &str, quote: u8) -> Cow<'_, str> {
    let needs = v
        .bytes()
        .any(|c| matches!(c, b'<' | b'>' | b'&') || c == quote);
    if needs {
        quick_xml::escape::escape(v)
    } else {
        Cow::Borrowed(v)
    }
}

/// Span edits to one document: each replaces `start..end` of the source (`start == end`
/// inserts) with a slice of one shared text buffer, so building them allocates once.
#[derive(Debug, Default)]
pub(crate) struct Edits {
    /// (start, end, text start, text end).
    spans: Vec<[usize; 4]>,
    /// The replacement texts, back to back.
    pub buf: String,
}

impl Edits {
    pub fn with_capacity(edits: usize, text: usize) -> Self {
        let mut spans = EDIT_SPANS.with(std::cell::Cell::take);
        spans.clear();
        spans.reserve(edits);
        let mut buf = EDIT_TEXT.with(std::cell::Cell::take);
        buf.clear();
        buf.reserve(text);
        Edits { spans, buf }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Where the next text starts in [`Edits::buf`]; write the text there, then [`Edits::commit`].
    pub fn mark(&self) -> usize {
        self.buf.len()
    }

    /// Records that `start..end` is replaced by what was written to the buffer since `mark`.
    pub fn commit(&mut self, start: usize, end: usize, mark: usize) {
        self.spans.push([start, end, mark, self.buf.len()]);
    }

    /// Replaces `start..end` by `text`.
    pub fn replace(&mut self, start: usize, end: usize, text: &str) {
        let m = self.mark();
        self.buf.push_str(text);
        self.commit(start, end, m);
    }

    /// Applies non-overlapping edits (an insertion may sit at the start of a replaced range).
    pub fn apply(&mut self, src: &str) -> Result<String> {
        // Planned edits mostly come in document order already.
        if !self.spans.is_sorted_by_key(|e| (e[0], e[1])) {
            self.spans.sort_by_key(|e| (e[0], e[1]));
        }
        let mut out = String::with_capacity(src.len() + self.buf.len());
        let mut pos = 0;
        for &[start, end, ts, te] in &self.spans {
            if start < pos || end < start || end > src.len() {
                return Err(Error::Invalid(format!(
                    "internal: overlapping rewrite at byte {start}"
                )));
            }
            out.push_str(src.get(pos..start).unwrap_or(""));
            out.push_str(self.buf.get(ts..te).unwrap_or(""));
            pos = end;
        }
        out.push_str(src.get(pos..).unwrap_or(""));
        Ok(out)
    }
}

impl Drop for Edits {
    fn drop(&mut self) {
        if self.buf.capacity() <= POOL_MAX_BYTES {
            let b = std::mem::take(&mut self.buf);
            EDIT_TEXT.with(|c| c.set(b));
        }
        if self.spans.capacity() * std::mem::size_of::<[usize; 4]>() <= POOL_MAX_BYTES {
            let s = std::mem::take(&mut self.spans);
            EDIT_SPANS.with(|c| c.set(s));
        }
    }
}

/// Appends `v` escaped for an attribute value or text: `&`, `<`, `>` always, and both quotes
/// when `quotes` (the same replacements as quick-xml's `escape`/`partial_escape`).
pub(crate) fn push_escaped(out: &mut String, v: &str, quotes: bool) {
    let b = v.as_bytes();
    if !b.iter().any(|&c| CLASS[usize::from(c)] & ESCAPE != 0) {
        out.push_str(v);
        return;
    }
    let mut pos = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep = match c {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\'' if quotes => "&apos;",
            b'"' if quotes => "&quot;",
            _ => continue,
        };
        out.push_str(&v[pos..i]);
        out.push_str(rep);
        pos = i + 1;
    }
    out.push_str(&v[pos..]);
}

/// A small writer for the elements prae generates: direct pushes into one `String`, escaped
/// like quick-xml's writer (attributes in double quotes, `<x/>` for empty elements).
pub(crate) struct Gen {
    out: String,
}

impl Gen {
    pub fn new() -> Self {
        Self::with_capacity(128)
    }
    pub fn with_capacity(n: usize) -> Self {
        Gen {
            out: String::with_capacity(n),
        }
    }
    pub fn raw_ws(&mut self, ws: &str) -> &mut Self {
        self.out.push_str(ws);
        self
    }
    /// `<name a="..">` (or `<name .../>` when `empty`).
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)], empty: bool) -> &mut Self {
        let o = &mut self.out;
        o.push('<');
        o.push_str(name);
        for &(k, v) in attrs {
            o.push(' ');
            o.push_str(k);
            o.push_str("=\"");
            push_escaped(o, v, true);
            o.push('"');
        }
        o.push_str(if empty { "/>" } else { ">" });
        self
    }
    pub fn text(&mut self, t: &str) -> &mut Self {
        push_escaped(&mut self.out, t, false);
        self
    }
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }
    /// `<name attrs>text</name>`.
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.open(name, attrs, false).text(text).close(name)
    }
    pub fn finish(self) -> String {
        self.out
    }
}
