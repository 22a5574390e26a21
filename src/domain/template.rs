//! Domain templates (`domain-templates/`), rendered from values through the XML writer.
//!
//! A template is a real libvirt domain XML file with placeholders:
//! - `{{key}}` in an attribute value or in text is replaced by the value of `key`. The value is
//!   written by quick-xml's writer, so `<`, `&`, `'` and `"` in it are escaped; a template never
//!   builds XML by string formatting.
//! - An element carrying `tpl:if='key'` (namespace [`TEMPLATE_NS`]) is kept only when `key` has a
//!   value; the attribute and the namespace declaration are removed from the output.
//!
//! The keys are the fields of [`TemplateValues`] (see [`KEYS`]). A template is checked when it
//! is added (well-formed, a `<domain>` root, only known keys), so a bad template file fails when it
//! is loaded, not when a build renders it. Rendering fails with a clear [`Error`] when a
//! placeholder outside a `tpl:if` element has no value.
//!
//! Comments inside `<domain>` are kept; comments before it document the template and are not
//! rendered.
//!
//! The templates shipped in `domain-templates/` are compiled in ([`TemplateSet::builtin`]), so a
//! binary needs no files. Operators' own templates are added with [`TemplateSet::add`] from text;
//! reading them from a directory (`NAME.xml` -> template `NAME`) is left to the caller, because
//! this module, like all of [`crate::domain`], is pure: strings in, strings out.

use crate::hypervisor::VirtType;
use crate::model::{MAX_VCPUS, MIN_MEMORY_KIB};
use crate::{Error, Result};
use quick_xml::Writer;
use quick_xml::encoding::Decoder;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::reader::Reader;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The namespace of template directives (`tpl:if`).
pub const TEMPLATE_NS: &str = "urn:prae:template:1";
/// The prefix templates bind [`TEMPLATE_NS`] to.
pub const TEMPLATE_PREFIX: &str = "tpl";

/// The templates compiled into the library: `(name, text)`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "lab-small",
        include_str!("../../domain-templates/lab-small.xml"),
    ),
    (
        "debian12",
        include_str!("../../domain-templates/debian12.xml"),
    ),
];

/// Every key a template may use, with what it stands for.
pub const KEYS: &[(&str, &str)] = &[
    ("name", "domain name"),
    ("uuid", "domain UUID (optional: libvirt generates one)"),
    ("type", "virtualization type, kvm or qemu"),
    ("memory_kib", "boot memory, KiB"),
    (
        "current_memory_kib",
        "current (balloon) memory, KiB; unset: libvirt uses the boot memory",
    ),
    ("vcpus", "vCPUs online at boot"),
    ("max_vcpus", "maximum vCPUs; vcpus when unset"),
    ("kernel", "kernel image path (direct kernel boot)"),
    ("initrd", "initrd path (direct kernel boot)"),
    (
        "cmdline",
        "extra kernel command-line arguments (may be empty)",
    ),
    ("disk", "first disk image path"),
    ("disk_format", "first disk image format"),
    ("disk2", "second disk image path"),
    ("disk2_format", "second disk image format"),
    ("serial_log", "file the serial console is written to"),
];

/// A disk image's format, as libvirt's `<driver type=...>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Qcow2,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

/// A disk image a template attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskImage {
    pub path: PathBuf,
    pub format: ImageFormat,
}

impl DiskImage {
    pub fn new(path: impl Into<PathBuf>, format: ImageFormat) -> Self {
        DiskImage {
            path: path.into(),
            format,
        }
    }
}

/// The values a template is rendered with. `None` means "not given": an element guarded by
/// `tpl:if` on that key is dropped, any other use of it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateValues {
    pub name: String,
    pub uuid: Option<String>,
    /// Chosen at render time, e.g. from [`crate::hypervisor::Hypervisor::choose_virt_type`].
    pub virt_type: VirtType,
    /// Boot memory (`<memory>`), KiB.
    pub memory_kib: u64,
    /// Balloon target (`<currentMemory>`), KiB. Unset, the templates leave the element out and
    /// libvirt uses the boot memory, so a later rewrite of `<memory>` is not ballooned back.
    pub current_memory_kib: Option<u64>,
    pub vcpus: u32,
    pub max_vcpus: Option<u32>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// Extra kernel arguments, appended to the template's own.
    pub cmdline: String,
    pub disk: Option<DiskImage>,
    pub disk2: Option<DiskImage>,
    pub serial_log: Option<PathBuf>,
}

impl TemplateValues {
    /// The required values; everything else unset.
    pub fn new(name: impl Into<String>, virt_type: VirtType, memory_kib: u64, vcpus: u32) -> Self {
        TemplateValues {
            name: name.into(),
            uuid: None,
            virt_type,
            memory_kib,
            current_memory_kib: None,
            vcpus,
            max_vcpus: None,
            kernel: None,
            initrd: None,
            cmdline: String::new(),
            disk: None,
            disk2: None,
            serial_log: None,
        }
    }

    /// Checks the values on their own (before any template sees them); the error names the value.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(m));
        if self.name.is_empty() {
            return invalid("domain name is empty".into());
        }
        if self.name.contains('/') {
            return invalid(format!("domain name '{}' contains '/'", self.name));
        }
        if let Some(uuid) = &self.uuid
            && !is_uuid(uuid)
        {
            return invalid(format!("uuid '{uuid}' is not a UUID"));
        }
        if self.vcpus == 0 {
            return invalid("vcpus must be at least 1, got 0".into());
        }
        let max = self.max_vcpus.unwrap_or(self.vcpus);
        if max > MAX_VCPUS {
            return invalid(format!("max_vcpus {max} exceeds the limit of {MAX_VCPUS}"));
        }
        if self.vcpus > max {
            return invalid(format!("vcpus {} exceeds max_vcpus {max}", self.vcpus));
        }
        if self.memory_kib < MIN_MEMORY_KIB {
            return invalid(format!(
                "memory {} is below the floor of {}",
                crate::units::format_kib(self.memory_kib),
                crate::units::format_kib(MIN_MEMORY_KIB)
            ));
        }
        if let Some(cur) = self.current_memory_kib
            && cur > self.memory_kib
        {
            return invalid(format!(
                "current memory {} exceeds memory {}",
                crate::units::format_kib(cur),
                crate::units::format_kib(self.memory_kib)
            ));
        }
        Ok(())
    }

    /// The value of `key` as text; `Ok(None)` when it is not set; an error for an unknown key
    /// or a path that is not UTF-8.
    fn get(&self, key: &str) -> Result<Option<String>> {
        fn path(key: &str, p: &Option<PathBuf>) -> Result<Option<String>> {
            p.as_deref().map(|p| path_text(key, p)).transpose()
        }
        fn disk_path(key: &str, d: &Option<DiskImage>) -> Result<Option<String>> {
            d.as_ref().map(|d| path_text(key, &d.path)).transpose()
        }
        Ok(match key {
            "name" => Some(self.name.clone()),
            "uuid" => self.uuid.clone(),
            "type" => Some(self.virt_type.as_str().to_owned()),
            "memory_kib" => Some(self.memory_kib.to_string()),
            "current_memory_kib" => self.current_memory_kib.map(|k| k.to_string()),
            "vcpus" => Some(self.vcpus.to_string()),
            "max_vcpus" => Some(self.max_vcpus.unwrap_or(self.vcpus).to_string()),
            "kernel" => path(key, &self.kernel)?,
            "initrd" => path(key, &self.initrd)?,
            "cmdline" => Some(self.cmdline.clone()),
            "disk" => disk_path(key, &self.disk)?,
            "disk_format" => self.disk.as_ref().map(|d| d.format.as_str().to_owned()),
            "disk2" => disk_path(key, &self.disk2)?,
            "disk2_format" => self.disk2.as_ref().map(|d| d.format.as_str().to_owned()),
            "serial_log" => path(key, &self.serial_log)?,
            _ => return Err(Error::Invalid(format!("unknown template key '{key}'"))),
        })
    }
}

fn path_text(key: &str, p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Invalid(format!("{key} path {} is not UTF-8", p.display())))
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    let dashed = s.len() == 36
        && s.char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
    (dashed || s.len() == 32) && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// One parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    name: String,
    text: String,
}

impl Template {
    /// Checks `text` as a template: well-formed XML, a `<domain>` root, only known keys and
    /// directives. The error names the template.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Result<Self> {
        let t = Template {
            name: name.into(),
            text: text.into(),
        };
        if t.name.is_empty() {
            return Err(Error::Invalid("template name is empty".into()));
        }
        // A dry run with no values: checks structure and keys, collects nothing.
        t.process(None)?;
        Ok(t)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template's source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Renders the template with `values`: domain XML ready for `virDomainDefineXML`.
    pub fn render(&self, values: &TemplateValues) -> Result<String> {
        values.validate()?;
        self.process(Some(values))
            .map(|out| out.expect("rendering with values yields XML"))
    }

    /// Walks the template once. With `values`, writes the rendered XML; without, only checks.
    fn process(&self, values: Option<&TemplateValues>) -> Result<Option<String>> {
        let ctx = |m: String| Error::Invalid(format!("template '{}': {m}", self.name));
        let xml_err = |e: &dyn fmt::Display, pos: u64| {
            Error::Xml(format!("template '{}' at byte {pos}: {e}", self.name))
        };
        let mut reader = Reader::from_str(&self.text);
        reader.config_mut().trim_text(false);
        let mut writer = Writer::new(Vec::new());
        // Text (with resolved entity references) not yet written: it is substituted as a whole.
        let mut text = String::new();
        // Depth inside an element being dropped (0: not dropping).
        let mut skipping = 0usize;
        let mut seen_root = false;
        let mut depth = 0usize;

        loop {
            let pos = reader.buffer_position();
            let event = reader.read_event().map_err(|e| xml_err(&e, pos))?;
            match &event {
                Event::Text(t) => {
                    if skipping == 0 {
                        text.push_str(&t.decode().map_err(|e| xml_err(&e, pos))?);
                    }
                    continue;
                }
                Event::GeneralRef(r) => {
                    if skipping == 0 {
                        let c = match r.resolve_char_ref().map_err(|e| xml_err(&e, pos))? {
                            Some(c) => c.to_string(),
                            None => {
                                let name = r.decode().map_err(|e| xml_err(&e, pos))?;
                                resolve_predefined_entity(&name)
                                    .ok_or_else(|| ctx(format!("unknown entity '&{name};'")))?
                                    .to_owned()
                            }
                        };
                        text.push_str(&c);
                    }
                    continue;
                }
                _ => {}
            }
            // Any other event ends a run of text.
            match &event {
                Event::Start(e) | Event::Empty(e) if skipping == 0 => {
                    let is_start = matches!(event, Event::Start(_));
                    if depth == 0 {
                        if seen_root {
                            return Err(ctx("more than one root element".into()));
                        }
                        seen_root = true;
                        if e.local_name().as_ref() != b"domain" {
                            return Err(ctx(format!(
                                "the root element is <{}>, not <domain>",
                                String::from_utf8_lossy(e.name().as_ref())
                            )));
                        }
                        let tpl_if = format!("{TEMPLATE_PREFIX}:if");
                        if e.try_get_attribute(tpl_if.as_str())
                            .ok()
                            .flatten()
                            .is_some()
                        {
                            return Err(ctx(format!("{tpl_if} on the root element")));
                        }
                    }
                    let (start, keep) = self.element(e, values, reader.decoder(), pos, &ctx)?;
                    if keep {
                        flush_text(&mut text, values, &mut writer, &ctx)?;
                        if let Some(start) = start {
                            let ev = if is_start {
                                Event::Start(start)
                            } else {
                                Event::Empty(start)
                            };
                            writer.write_event(ev).map_err(|e| xml_err(&e, pos))?;
                        }
                        if is_start {
                            depth += 1;
                        }
                    } else {
                        // Drop the element and the indentation that led up to it.
                        if text.trim().is_empty() {
                            text.clear();
                        } else {
                            flush_text(&mut text, values, &mut writer, &ctx)?;
                        }
                        if is_start {
                            skipping = 1;
                        }
                    }
                }
                Event::Start(_) => skipping += 1,
                Event::Empty(_) => {}
                Event::End(_) if skipping > 0 => skipping -= 1,
                Event::End(e) => {
                    flush_text(&mut text, values, &mut writer, &ctx)?;
                    depth = depth.saturating_sub(1);
                    writer
                        .write_event(Event::End(e.clone()))
                        .map_err(|e| xml_err(&e, pos))?;
                }
                Event::Eof => {
                    if depth > 0 || skipping > 0 {
                        return Err(Error::Xml(format!(
                            "template '{}' ends inside an element",
                            self.name
                        )));
                    }
                    flush_text(&mut text, values, &mut writer, &ctx)?;
                    break;
                }
                _ if skipping > 0 => {}
                // Comments outside the root document the template itself: not rendered.
                Event::Comment(_) if depth == 0 => text.clear(),
                other => {
                    // Declaration, comments, CDATA, processing instructions, doctype: verbatim.
                    flush_text(&mut text, values, &mut writer, &ctx)?;
                    writer
                        .write_event(other.clone())
                        .map_err(|e| xml_err(&e, pos))?;
                }
            }
        }
        if !seen_root {
            return Err(ctx("no <domain> element".into()));
        }
        match values {
            None => Ok(None),
            Some(_) => String::from_utf8(writer.into_inner())
                .map(Some)
                .map_err(|e| ctx(format!("rendered XML is not UTF-8: {e}"))),
        }
    }

    /// Handles one start tag: returns the tag to write (`None` in a dry run) and whether the
    /// element is kept (`tpl:if`).
    fn element(
        &self,
        e: &BytesStart<'_>,
        values: Option<&TemplateValues>,
        decoder: Decoder,
        pos: u64,
        ctx: &dyn Fn(String) -> Error,
    ) -> Result<(Option<BytesStart<'static>>, bool)> {
        let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let mut out = BytesStart::new(tag.clone());
        let mut keep = true;
        let xmlns_tpl = format!("xmlns:{TEMPLATE_PREFIX}");
        let tpl_if = format!("{TEMPLATE_PREFIX}:if");
        for attr in e.attributes() {
            let attr = attr.map_err(|err| {
                Error::Xml(format!("template '{}' at byte {pos}: {err}", self.name))
            })?;
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            let value = attr.decode_and_unescape_value(decoder).map_err(|err| {
                Error::Xml(format!("template '{}' at byte {pos}: {err}", self.name))
            })?;
            if key == xmlns_tpl {
                if value != TEMPLATE_NS {
                    return Err(ctx(format!(
                        "{xmlns_tpl} must be '{TEMPLATE_NS}', not '{value}'"
                    )));
                }
                continue;
            }
            if key == tpl_if {
                let k = value.trim();
                check_key(k, ctx)?;
                if let Some(v) = values {
                    keep = v.get(k)?.is_some();
                }
                continue;
            }
            if key.starts_with(&format!("{TEMPLATE_PREFIX}:")) {
                return Err(ctx(format!("unknown directive {key} on <{tag}>")));
            }
            let rendered = substitute(&value, values, ctx)?;
            out.push_attribute((key.as_str(), rendered.as_str()));
        }
        Ok((values.map(|_| out), keep))
    }
}

/// Writes the pending text, substituted, through the writer (which escapes it).
fn flush_text(
    text: &mut String,
    values: Option<&TemplateValues>,
    writer: &mut Writer<Vec<u8>>,
    ctx: &dyn Fn(String) -> Error,
) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let rendered = substitute(text, values, ctx)?;
    text.clear();
    writer
        .write_event(Event::Text(BytesText::new(&rendered)))
        .map_err(|e| Error::Xml(e.to_string()))
}

fn check_key(key: &str, ctx: &dyn Fn(String) -> Error) -> Result<()> {
    if KEYS.iter().any(|(k, _)| *k == key) {
        Ok(())
    } else {
        Err(ctx(format!("unknown key '{key}'")))
    }
}

/// Replaces every `{{key}}` in `s`. Without values (a dry run) only checks the keys.
fn substitute(
    s: &str,
    values: Option<&TemplateValues>,
    ctx: &dyn Fn(String) -> Error,
) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| ctx(format!("unterminated placeholder in '{}'", s.trim())))?;
        let key = after[..close].trim();
        check_key(key, ctx)?;
        if let Some(v) = values {
            let value = v
                .get(key)?
                .ok_or_else(|| ctx(format!("needs a value for '{key}', which is not set")))?;
            if let Some(c) = value
                .chars()
                .find(|&c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            {
                return Err(Error::Invalid(format!(
                    "value of '{key}' contains control character {:?}, which XML cannot carry",
                    c
                )));
            }
            out.push_str(&value);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A set of named templates: the built-in ones, plus any added.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

impl TemplateSet {
    /// An empty set.
    pub fn new() -> Self {
        TemplateSet::default()
    }

    /// The templates compiled in from `domain-templates/`.
    pub fn builtin() -> Self {
        let mut set = TemplateSet::new();
        for (name, text) in BUILTIN {
            let t = Template::new(*name, *text).expect("built-in templates are checked by tests");
            set.templates.insert(t.name.clone(), t);
        }
        set
    }

    /// Adds (or replaces) a template from its text, e.g. the contents of `NAME.xml` from an
    /// operator's template directory. The template is checked first.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> Result<()> {
        let t = Template::new(name, text)?;
        self.templates.insert(t.name.clone(), t);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Template> {
        self.templates.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "domain template '{name}' (known: {})",
                self.names().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Renders template `name` with `values`.
    pub fn render(&self, name: &str, values: &TemplateValues) -> Result<String> {
        self.get(name)?.render(values)
    }
}

/// Renders the built-in template `name` with `values`.
pub fn render(name: &str, values: &TemplateValues) -> Result<String> {
    let text = BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "domain template '{name}' (known: {})",
                BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    Template::new(name, text)?.render(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element of `xml` as (name, attributes, direct text), in document order; panics if
    /// `xml` is not well-formed.
    /// One element of rendered XML: name, attributes, direct text.
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        text: String,
    }

    /// Every element of `xml` in document order; panics if `xml` is not well-formed.
    fn elements(xml: &str) -> Vec<El> {
        let mut reader = Reader::from_str(xml);
        let mut out: Vec<El> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            match reader.read_event().expect("rendered XML is well-formed") {
                Event::Start(e) => {
                    out.push(element(&e, &reader));
                    open.push(out.len() - 1);
                }
                Event::Empty(e) => out.push(element(&e, &reader)),
                Event::End(_) => {
                    open.pop();
                }
                Event::Text(t) => {
                    if let Some(&i) = open.last() {
                        out[i].text.push_str(&t.decode().unwrap());
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(&i) = open.last() {
                        let name = r.decode().unwrap();
                        let c = match r.resolve_char_ref().unwrap() {
                            Some(c) => c.to_string(),
                            None => resolve_predefined_entity(&name).unwrap().to_owned(),
                        };
                        out[i].text.push_str(&c);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(open.is_empty(), "unclosed elements in {xml}");
        out
    }

    fn element(e: &BytesStart<'_>, reader: &Reader<&[u8]>) -> El {
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                let value = a.decode_and_unescape_value(reader.decoder()).unwrap();
                (key, value.into_owned())
            })
            .collect();
        El {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs,
            text: String::new(),
        }
    }

    fn text_of(xml: &str, name: &str) -> Vec<String> {
        elements(xml)
            .into_iter()
            .filter(|e| e.name == name)
            .map(|e| e.text)
            .collect()
    }

    fn attr_of(xml: &str, name: &str, attr: &str) -> Vec<String> {
        elements(xml)
            .into_iter()
            .filter(|e| e.name == name)
            .filter_map(|e| e.attrs.into_iter().find(|(k, _)| k == attr).map(|(_, v)| v))
            .collect()
    }

    fn lab_values() -> TemplateValues {
        let mut v = TemplateValues::new("prae-lab-unit", VirtType::Qemu, 128 * 1024, 1);
        v.kernel = Some("/guest/vmlinuz".into());
        v.initrd = Some("/guest/initrd.img".into());
        v.cmdline = "prae.poweroff=60".into();
        v.serial_log = Some("/logs/serial.log".into());
        v
    }

    fn debian_values() -> TemplateValues {
        let mut v = TemplateValues::new("prae-build-1", VirtType::Kvm, 2 * 1024 * 1024, 2);
        v.kernel = Some("/rootfs/vmlinuz".into());
        v.initrd = Some("/rootfs/initrd.img".into());
        v.disk = Some(DiskImage::new("/images/overlay.qcow2", ImageFormat::Qcow2));
        v.serial_log = Some("/logs/build.log".into());
        v
    }

    #[test]
    fn builtin_templates_are_valid() {
        let set = TemplateSet::builtin();
        assert_eq!(set.names().collect::<Vec<_>>(), ["debian12", "lab-small"]);
    }

    #[test]
    fn lab_small_renders_the_values() {
        let xml = render("lab-small", &lab_values()).unwrap();
        assert_eq!(attr_of(&xml, "domain", "type"), ["qemu"]);
        assert_eq!(text_of(&xml, "name"), ["prae-lab-unit"]);
        assert_eq!(text_of(&xml, "memory"), ["131072"]);
        // No current memory given: no <currentMemory>, so libvirt (and a later rewrite of
        // <memory>) keeps it equal to the boot memory.
        assert!(text_of(&xml, "currentMemory").is_empty());
        assert_eq!(text_of(&xml, "vcpu"), ["1"]);
        assert_eq!(attr_of(&xml, "vcpu", "current"), ["1"]);
        assert_eq!(text_of(&xml, "kernel"), ["/guest/vmlinuz"]);
        assert_eq!(text_of(&xml, "initrd"), ["/guest/initrd.img"]);
        assert_eq!(
            text_of(&xml, "cmdline"),
            ["console=ttyS0 panic=-1 prae.poweroff=60"]
        );
        assert_eq!(
            attr_of(&xml, "source", "path"),
            ["/logs/serial.log", "/logs/serial.log"]
        );
        // Optional uuid not given: no <uuid>, and no trace of the template syntax.
        assert!(text_of(&xml, "uuid").is_empty());
        assert!(!xml.contains("{{") && !xml.contains("tpl:") && !xml.contains(TEMPLATE_NS));
        assert!(
            !xml.contains("\n\n"),
            "a dropped element left an empty line:\n{xml}"
        );
    }

    #[test]
    fn optional_values_when_given() {
        let mut v = lab_values();
        v.uuid = Some("5406648d-091b-4947-97a1-18172048f75c".into());
        v.max_vcpus = Some(4);
        v.vcpus = 2;
        v.current_memory_kib = Some(100 * 1024);
        let xml = render("lab-small", &v).unwrap();
        assert_eq!(
            text_of(&xml, "uuid"),
            ["5406648d-091b-4947-97a1-18172048f75c"]
        );
        assert_eq!(text_of(&xml, "vcpu"), ["4"]);
        assert_eq!(attr_of(&xml, "vcpu", "current"), ["2"]);
        assert_eq!(text_of(&xml, "currentMemory"), ["102400"]);
    }

    #[test]
    fn debian12_second_disk_is_optional() {
        let xml = render("debian12", &debian_values()).unwrap();
        assert_eq!(attr_of(&xml, "domain", "type"), ["kvm"]);
        assert_eq!(attr_of(&xml, "source", "file"), ["/images/overlay.qcow2"]);
        assert_eq!(attr_of(&xml, "driver", "type"), ["qcow2"]);
        assert_eq!(attr_of(&xml, "target", "dev"), ["vda"]);
        assert_eq!(
            text_of(&xml, "cmdline"),
            ["root=/dev/vda rw console=ttyS0 "]
        );
        assert_eq!(attr_of(&xml, "target", "name"), ["org.qemu.guest_agent.0"]);
        assert_eq!(attr_of(&xml, "memballoon", "model"), ["virtio"]);

        let mut v = debian_values();
        v.disk2 = Some(DiskImage::new("/images/repo.img", ImageFormat::Raw));
        let xml = render("debian12", &v).unwrap();
        assert_eq!(
            attr_of(&xml, "source", "file"),
            ["/images/overlay.qcow2", "/images/repo.img"]
        );
        assert_eq!(attr_of(&xml, "driver", "type"), ["qcow2", "raw"]);
        assert_eq!(attr_of(&xml, "target", "dev"), ["vda", "vdb"]);
    }

    #[test]
    fn virt_type_is_chosen_at_render_time() {
        let mut v = lab_values();
        for t in [VirtType::Kvm, VirtType::Qemu] {
            v.virt_type = t;
            let xml = render("lab-small", &v).unwrap();
            assert_eq!(attr_of(&xml, "domain", "type"), [t.as_str()]);
        }
    }

    #[test]
    fn values_are_escaped_by_the_writer() {
        let nasty = r#"a<b&c'd"e>f"#;
        let mut v = lab_values();
        v.name = nasty.into();
        v.cmdline = nasty.into();
        v.serial_log = Some(format!("/logs/{nasty}.log").into());
        let xml = render("lab-small", &v).unwrap();
        assert!(
            !xml.contains(nasty),
            "raw value leaked into the XML:\n{xml}"
        );
        assert!(xml.contains("&lt;") && xml.contains("&amp;"));
        // Parsed back, every value is exactly what was given.
        assert_eq!(text_of(&xml, "name"), [nasty]);
        assert_eq!(
            text_of(&xml, "cmdline"),
            [format!("console=ttyS0 panic=-1 {nasty}")]
        );
        assert_eq!(
            attr_of(&xml, "source", "path"),
            [format!("/logs/{nasty}.log"), format!("/logs/{nasty}.log")]
        );
    }

    #[test]
    fn template_entities_and_comments_survive() {
        let t = "<!-- c --><domain type='{{type}}'><name>{{name}}</name>\
                 <!-- d --><description>a &amp; b &#65;</description></domain>";
        let mut set = TemplateSet::new();
        set.add("tiny", t).unwrap();
        let xml = set.render("tiny", &lab_values()).unwrap();
        assert!(
            !xml.contains("<!-- c -->"),
            "template header comment rendered"
        );
        assert!(xml.contains("<!-- d -->"), "comment inside the domain lost");
        assert_eq!(text_of(&xml, "description"), ["a & b A"]);
    }

    #[test]
    fn unknown_template_is_not_found() {
        let err = render("windows95", &lab_values()).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("windows95") && msg.contains("lab-small"),
            "{msg}"
        );
        let err = TemplateSet::builtin().get("nope").unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }

    #[test]
    fn missing_value_names_the_key() {
        let mut v = lab_values();
        v.kernel = None;
        let msg = render("lab-small", &v).unwrap_err().to_string();
        assert!(
            msg.contains("lab-small") && msg.contains("'kernel'"),
            "{msg}"
        );
        let msg = render("debian12", &lab_values()).unwrap_err().to_string();
        assert!(msg.contains("'disk") && msg.contains("debian12"), "{msg}");
    }

    #[test]
    fn bad_values_are_rejected() {
        type Change = Box<dyn Fn(&mut TemplateValues)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|v| v.vcpus = 0), "vcpus must be at least 1"),
            (
                Box::new(|v| {
                    v.vcpus = 3;
                    v.max_vcpus = Some(2)
                }),
                "vcpus 3 exceeds max_vcpus 2",
            ),
            (Box::new(|v| v.memory_kib = 1024), "below the floor"),
            (
                Box::new(|v| v.current_memory_kib = Some(v.memory_kib + 1)),
                "exceeds memory",
            ),
            (Box::new(|v| v.name = String::new()), "name is empty"),
            (Box::new(|v| v.name = "a/b".into()), "'a/b'"),
            (
                Box::new(|v| v.uuid = Some("not-a-uuid".into())),
                "not-a-uuid",
            ),
            (
                Box::new(|v| v.cmdline = "a\u{1}b".into()),
                "control character",
            ),
        ];
        for (change, want) in cases {
            let mut v = lab_values();
            change(&mut v);
            let err = render("lab-small", &v).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{err}");
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_path_is_rejected() {
        use std::os::unix::ffi::OsStrExt;
        let mut v = lab_values();
        v.kernel = Some(PathBuf::from(std::ffi::OsStr::from_bytes(b"/k\xff")));
        let msg = render("lab-small", &v).unwrap_err().to_string();
        assert!(
            msg.contains("kernel path") && msg.contains("UTF-8"),
            "{msg}"
        );
    }

    #[test]
    fn bad_templates_are_rejected_when_added() {
        let cases = [
            (
                "<domain><name>{{nmae}}</name></domain>",
                "unknown key 'nmae'",
            ),
            (
                "<domain><name tpl:if='bogus'/></domain>",
                "unknown key 'bogus'",
            ),
            (
                "<domain><name tpl:unless='uuid'/></domain>",
                "unknown directive",
            ),
            (
                "<domain><name>{{name</name></domain>",
                "unterminated placeholder",
            ),
            ("<network><name/></network>", "not <domain>"),
            ("<domain><name></domain>", "not well-formed"),
            ("<domain><name>", "not well-formed"),
            ("", "no <domain>"),
            ("<domain/><domain/>", "more than one root"),
            (
                "<domain xmlns:tpl='urn:prae:template:1' tpl:if='uuid'/>",
                "on the root element",
            ),
            (
                "<domain xmlns:tpl='urn:other'/>",
                "must be 'urn:prae:template:1'",
            ),
        ];
        for (text, want) in cases {
            let err = TemplateSet::new().add("bad", text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err} lacks {want}");
            if !want.contains("well-formed") {
                assert!(
                    err.contains("'bad'"),
                    "{text}: {err} does not name the template"
                );
            }
        }
        assert!(TemplateSet::new().add("", "<domain/>").is_err());
    }
}
