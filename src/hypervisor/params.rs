//! libvirt typed parameters (`virTypedParameter`): a list built with libvirt's own allocator for
//! the setters (`virDomainSetBlockIoTune`, `virDomainSetInterfaceParameters`), and a safe copy of
//! a list libvirt hands back (all-domain stats records).

use std::ffi::{CStr, c_int};
use std::ptr;
use virt::sys;

/// A typed-parameter list built by `virTypedParamsAdd*` (libvirt allocates and grows it); freed
/// with `virTypedParamsFree` on drop.
pub(super) struct TypedParams {
    ptr: sys::virTypedParameterPtr,
    len: c_int,
    cap: c_int,
}

impl TypedParams {
    pub(super) fn new() -> Self {
        // `virTypedParamsAdd*` reset libvirt's thread-local error, which needs the library
        // initialised; opening a connection does that, but a list may be built before one.
        // SAFETY: virInitialize is idempotent and thread-safe (libvirt guards it with a once).
        unsafe { sys::virInitialize() };
        TypedParams {
            ptr: ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    pub(super) fn add_ullong(
        &mut self,
        field: &CStr,
        value: u64,
    ) -> Result<(), virt::error::Error> {
        // SAFETY: `ptr`/`len`/`cap` are the null/0/0 triple from `new` or what an earlier
        // `virTypedParamsAdd*` call left in them (libvirt reallocates the array in place);
        // `field` is a NUL-terminated string that libvirt copies into the parameter.
        let rc = unsafe {
            sys::virTypedParamsAddULLong(
                &mut self.ptr,
                &mut self.len,
                &mut self.cap,
                field.as_ptr(),
                value,
            )
        };
        if rc < 0 {
            return Err(virt::error::Error::last_error());
        }
        Ok(())
    }

    pub(super) fn add_uint(&mut self, field: &CStr, value: u32) -> Result<(), virt::error::Error> {
        // SAFETY: as in `add_ullong`: the triple is libvirt-managed and `field` is NUL-terminated.
        let rc = unsafe {
            sys::virTypedParamsAddUInt(
                &mut self.ptr,
                &mut self.len,
                &mut self.cap,
                field.as_ptr(),
                value,
            )
        };
        if rc < 0 {
            return Err(virt::error::Error::last_error());
        }
        Ok(())
    }

    /// The array and its length, for a setter that only reads them.
    pub(super) fn raw(&self) -> (sys::virTypedParameterPtr, c_int) {
        (self.ptr, self.len)
    }
}

impl Drop for TypedParams {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` holds `len` parameters allocated by `virTypedParamsAdd*`; it is
            // freed exactly once, here, and never used afterwards.
            unsafe { sys::virTypedParamsFree(self.ptr, self.len) };
        }
    }
}

/// The value of one typed parameter, copied out of libvirt's memory.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
    Str(String),
}

impl Value {
    /// The value as an unsigned counter (`None` for negative numbers, strings, doubles).
    pub(super) fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Copies `n` parameters starting at `params` into owned Rust values.
///
/// # Safety
/// `params` must point to `n` initialised `virTypedParameter`s (or be null with `n <= 0`) that
/// stay valid for the duration of the call; string values must be NUL-terminated or null.
pub(super) unsafe fn copy_params(
    params: *const sys::virTypedParameter,
    n: c_int,
) -> Vec<(String, Value)> {
    let n = usize::try_from(n).unwrap_or(0);
    if params.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `params` points to `n` initialised parameters.
    let slice = unsafe { std::slice::from_raw_parts(params, n) };
    let mut out = Vec::with_capacity(n);
    for p in slice {
        // `field` is a fixed 80-byte buffer that libvirt NUL-terminates; read at most its length.
        let bytes: Vec<u8> = p
            .field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let name = String::from_utf8_lossy(&bytes).into_owned();
        let t = u32::try_from(p.type_).unwrap_or(0);
        // SAFETY: `type_` says which union member libvirt initialised and only that member is
        // read; a string member is null or a NUL-terminated string owned by the list, which the
        // caller keeps alive for this call; it is copied, not freed.
        let value = unsafe {
            match t {
                sys::VIR_TYPED_PARAM_INT => Value::Int(i64::from(p.value.i)),
                sys::VIR_TYPED_PARAM_UINT => Value::UInt(u64::from(p.value.ui)),
                sys::VIR_TYPED_PARAM_LLONG => Value::Int(p.value.l),
                sys::VIR_TYPED_PARAM_ULLONG => Value::UInt(p.value.ul),
                sys::VIR_TYPED_PARAM_DOUBLE => Value::Double(p.value.d),
                sys::VIR_TYPED_PARAM_BOOLEAN => Value::Bool(p.value.b != 0),
                sys::VIR_TYPED_PARAM_STRING if p.value.s.is_null() => Value::Str(String::new()),
                sys::VIR_TYPED_PARAM_STRING => {
                    Value::Str(CStr::from_ptr(p.value.s).to_string_lossy().into_owned())
                }
                _ => continue,
            }
        };
        out.push((name, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_params_read_back() {
        let mut p = TypedParams::new();
        p.add_ullong(c"total_bytes_sec", 1 << 40).unwrap();
        p.add_uint(c"inbound.average", 77).unwrap();
        let (ptr, n) = p.raw();
        // SAFETY: `p` owns `n` parameters at `ptr` and outlives the call.
        let got = unsafe { copy_params(ptr, n) };
        assert_eq!(
            got,
            vec![
                ("total_bytes_sec".to_string(), Value::UInt(1 << 40)),
                ("inbound.average".to_string(), Value::UInt(77)),
            ]
        );
    }

    #[test]
    fn empty_list_is_empty() {
        let p = TypedParams::new();
        let (ptr, n) = p.raw();
        // SAFETY: null with n == 0 is allowed.
        assert!(unsafe { copy_params(ptr, n) }.is_empty());
    }
}
