//! Storage for builds: the pools, volume XML (written by quick-xml's writer), flattening an
//! overlay with `qemu-img convert`, checksums, and the image store (`images` pool + manifests).

use super::Manifest;
use super::owner::PARTIAL_PREFIX;
use crate::hypervisor::{Hypervisor, VolumeInfo};
use crate::store::files;
use crate::{Error, Result};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

fn xml_err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot write XML: {e}"))
}

fn leaf(
    w: &mut Writer<Vec<u8>>,
    name: &str,
    attrs: &[(&str, &str)],
    text: Option<&str>,
) -> Result<()> {
    let mut s = BytesStart::new(name);
    for a in attrs {
        s.push_attribute(*a);
    }
    match text {
        None => w.write_event(Event::Empty(s)).map_err(xml_err),
        Some(t) => {
            w.write_event(Event::Start(s)).map_err(xml_err)?;
            w.write_event(Event::Text(BytesText::new(t)))
                .map_err(xml_err)?;
            w.write_event(Event::End(BytesEnd::new(name)))
                .map_err(xml_err)
        }
    }
}

fn open(w: &mut Writer<Vec<u8>>, name: &str, attrs: &[(&str, &str)]) -> Result<()> {
    let mut s = BytesStart::new(name);
    for a in attrs {
        s.push_attribute(*a);
    }
    w.write_event(Event::Start(s)).map_err(xml_err)
}

fn close(w: &mut Writer<Vec<u8>>, name: &str) -> Result<()> {
    w.write_event(Event::End(BytesEnd::new(name)))
        .map_err(xml_err)
}

fn finish(w: Writer<Vec<u8>>) -> Result<String> {
    String::from_utf8(w.into_inner()).map_err(xml_err)
}

/// `<pool type='dir'>` XML for a directory pool.
pub fn dir_pool_xml(name: &str, path: &Path) -> Result<String> {
    let path = path
        .to_str()
        .ok_or_else(|| Error::Invalid(format!("pool path {} is not UTF-8", path.display())))?;
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    open(&mut w, "pool", &[("type", "dir")])?;
    leaf(&mut w, "name", &[], Some(name))?;
    open(&mut w, "target", &[])?;
    leaf(&mut w, "path", &[], Some(path))?;
    close(&mut w, "target")?;
    close(&mut w, "pool")?;
    finish(w)
}

/// `<volume>` XML: a qcow2 volume of `capacity` bytes, optionally over a backing file.
pub fn volume_xml(name: &str, capacity: u64, backing: Option<(&Path, &str)>) -> Result<String> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    open(&mut w, "volume", &[])?;
    leaf(&mut w, "name", &[], Some(name))?;
    leaf(
        &mut w,
        "capacity",
        &[("unit", "bytes")],
        Some(&capacity.to_string()),
    )?;
    open(&mut w, "target", &[])?;
    leaf(&mut w, "format", &[("type", "qcow2")], None)?;
    close(&mut w, "target")?;
    if let Some((path, format)) = backing {
        let p = path.to_str().ok_or_else(|| {
            Error::Invalid(format!("backing path {} is not UTF-8", path.display()))
        })?;
        open(&mut w, "backingStore", &[])?;
        leaf(&mut w, "path", &[], Some(p))?;
        leaf(&mut w, "format", &[("type", format)], None)?;
        close(&mut w, "backingStore")?;
    }
    close(&mut w, "volume")?;
    finish(w)
}

/// Makes sure a directory pool `name` exists and runs (created at `path` when missing).
pub fn ensure_pool(hv: &dyn Hypervisor, name: &str, path: &Path) -> Result<()> {
    match hv.pool_list()?.into_iter().find(|p| p.name == name) {
        Some(p) if p.active => Ok(()),
        Some(_) => Err(Error::Invalid(format!(
            "storage pool '{name}' exists but is not running (virsh pool-start {name})"
        ))),
        None => {
            files::create_dir_all(path)?;
            hv.pool_define_start(&dir_pool_xml(name, path)?).map(drop)
        }
    }
}

/// Virtual size of a disk image (`qemu-img info --output=json`), bytes.
pub fn virtual_size(path: &Path) -> Result<u64> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .map_err(|e| Error::Invalid(format!("cannot run qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "qemu-img info {}: {}",
            path.display(),
            super::repo::last_lines(&out, 2)
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Invalid(format!("qemu-img info {}: {e}", path.display())))?;
    v["virtual-size"]
        .as_u64()
        .ok_or_else(|| Error::Invalid(format!("qemu-img info {}: no virtual-size", path.display())))
}

/// `qemu-img convert -O qcow2 SRC DST`: a standalone image with the overlay's content.
pub fn flatten(src: &Path, dst: &Path) -> Result<()> {
    let out = Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(src)
        .arg(dst)
        .output()
        .map_err(|e| Error::Invalid(format!("cannot run qemu-img: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "qemu-img convert {} -> {}: {}",
            src.display(),
            dst.display(),
            super::repo::last_lines(&out, 2)
        )))
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    files::sha256(path)
}

/// The manifest beside an image: `NAME.qcow2` -> `NAME.json`.
pub fn manifest_path(image: &Path) -> PathBuf {
    image.with_extension("json")
}

/// One image in the image store.
#[derive(Debug, Clone, Serialize)]
pub struct ImageEntry {
    pub volume: String,
    pub path: String,
    pub size: u64,
    /// `None` when the manifest is missing or unreadable (not a prae image, or damaged).
    pub manifest: Option<Manifest>,
}

/// The images in `pool` (qcow2 volumes, partial ones excluded), with their manifests.
pub fn list(hv: &dyn Hypervisor, pool: &str) -> Result<Vec<ImageEntry>> {
    if !hv.pool_list()?.iter().any(|p| p.name == pool) {
        return Ok(Vec::new());
    }
    hv.pool_refresh(pool)?;
    let mut out: Vec<ImageEntry> = hv
        .volume_list(pool)?
        .into_iter()
        .filter(|v| v.name.ends_with(".qcow2") && !v.name.starts_with(PARTIAL_PREFIX))
        .map(|v: VolumeInfo| {
            let manifest = files::read_optional(&manifest_path(Path::new(&v.path)))
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_str(&t).ok());
            ImageEntry {
                volume: v.name,
                path: v.path,
                size: v.allocation,
                manifest,
            }
        })
        .collect();
    out.sort_by(|a, b| a.volume.cmp(&b.volume));
    Ok(out)
}

/// The image `name` (volume name, with or without `.qcow2`).
pub fn find(hv: &dyn Hypervisor, pool: &str, name: &str) -> Result<ImageEntry> {
    let want = if name.ends_with(".qcow2") {
        name.to_string()
    } else {
        format!("{name}.qcow2")
    };
    list(hv, pool)?
        .into_iter()
        .find(|i| i.volume == want)
        .ok_or_else(|| Error::NotFound(format!("image '{name}' in pool '{pool}'")))
}

/// Removes a prae image (one with a manifest) and its manifest.
pub fn remove(hv: &dyn Hypervisor, pool: &str, name: &str) -> Result<ImageEntry> {
    let img = find(hv, pool, name)?;
    if img.manifest.is_none() {
        return Err(Error::Invalid(format!(
            "volume '{}' in pool '{pool}' has no prae manifest; not removing what prae did not build",
            img.volume
        )));
    }
    let m = manifest_path(Path::new(&img.path));
    hv.volume_delete(pool, &img.volume)?;
    files::remove_file(&m)?;
    let _ = hv.pool_refresh(pool);
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_xml_escapes_and_names_the_backing_store() {
        let x = volume_xml(
            "a&b.qcow2",
            42,
            Some((Path::new("/x/<base>.qcow2"), "qcow2")),
        )
        .unwrap();
        assert!(x.contains("<name>a&amp;b.qcow2</name>"), "{x}");
        assert!(x.contains("<capacity unit=\"bytes\">42</capacity>"), "{x}");
        assert!(x.contains("<path>/x/&lt;base&gt;.qcow2</path>"), "{x}");
        let p = dir_pool_xml("images", Path::new("/var/lib/prae/images")).unwrap();
        assert!(p.contains("<path>/var/lib/prae/images</path>"), "{p}");
    }
}
