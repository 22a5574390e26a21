//! libvirt's event loop and domain lifecycle events.
//!
//! libvirt delivers events only through a registered event loop implementation, and it must be
//! registered before the first connection is opened: [`init_event_loop`] registers the default
//! implementation once per process (called from `Libvirt::open`) and runs it on a dedicated
//! thread. [`subscribe`] registers a lifecycle callback that forwards events into a tokio
//! channel; dropping the returned stream deregisters it.

use super::{EventStream, LifecycleEvent, LifecycleKind};
use std::ffi::{CStr, c_int, c_void};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_stream::wrappers::UnboundedReceiverStream;
use virt::sys;

/// The outcome of registering libvirt's default event loop, decided once per process.
static EVENT_LOOP: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers libvirt's default event loop (once per process) and starts the thread that runs
/// it. Must run before any connection is opened; `Libvirt::open` calls it first.
pub(super) fn init_event_loop() -> Result<(), String> {
    EVENT_LOOP
        .get_or_init(|| {
            virt::event::event_register_default_impl()
                .map_err(|e| format!("cannot register libvirt's event loop: {}", e.message()))?;
            std::thread::Builder::new()
                .name("prae-libvirt-events".into())
                .spawn(run_event_loop)
                .map_err(|e| format!("cannot start libvirt's event loop thread: {e}"))?;
            Ok(())
        })
        .clone()
}

fn run_event_loop() {
    let mut failures = 0u32;
    loop {
        match virt::event::event_run_default_impl() {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(1000) {
                    log::warn!("libvirt event loop iteration failed: {}", e.message());
                }
                // Do not spin if the loop keeps failing.
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

/// Maps libvirt's lifecycle event number (`virDomainEventType`) to what prae acts on.
pub(super) fn kind_of(event: c_int) -> LifecycleKind {
    match u32::try_from(event) {
        Ok(sys::VIR_DOMAIN_EVENT_DEFINED) => LifecycleKind::Defined,
        Ok(sys::VIR_DOMAIN_EVENT_UNDEFINED) => LifecycleKind::Undefined,
        Ok(sys::VIR_DOMAIN_EVENT_STARTED) => LifecycleKind::Started,
        Ok(sys::VIR_DOMAIN_EVENT_STOPPED) => LifecycleKind::Stopped,
        _ => LifecycleKind::Other,
    }
}

type Sender = UnboundedSender<LifecycleEvent>;

/// The lifecycle callback (`virConnectDomainEventCallback`). Runs on the event loop thread;
/// never blocks (the channel is unbounded) and never panics.
unsafe extern "C" fn on_lifecycle(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    if opaque.is_null() || dom.is_null() {
        return 0;
    }
    // SAFETY: `opaque` is the `Box<Sender>` registered in `subscribe`; libvirt keeps it alive
    // until it calls `free_sender`, which happens only after the callback is deregistered and
    // no call of it is running. Only a shared reference is taken.
    let tx = unsafe { &*(opaque as *const Sender) };
    // SAFETY: `dom` is valid for the duration of the callback; the name is owned by the domain
    // object and copied here, not freed.
    let domain = unsafe {
        let p = sys::virDomainGetName(dom);
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    let mut buf = [0 as std::ffi::c_char; sys::VIR_UUID_STRING_BUFLEN as usize];
    // SAFETY: `buf` has VIR_UUID_STRING_BUFLEN bytes, the size libvirt writes (with its NUL).
    let uuid = unsafe {
        if sys::virDomainGetUUIDString(dom, buf.as_mut_ptr()) == 0 {
            CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
        } else {
            String::new()
        }
    };
    // A send fails only when the stream was dropped and deregistration is under way: ignore.
    let _ = tx.send(LifecycleEvent {
        domain,
        uuid,
        kind: kind_of(event),
        event,
        detail,
    });
    0
}

/// Frees the boxed sender when libvirt drops the callback (`virFreeCallback`).
unsafe extern "C" fn free_sender(opaque: *mut c_void) {
    if !opaque.is_null() {
        // SAFETY: `opaque` is the pointer `Box::into_raw` produced in `subscribe`; libvirt calls
        // this exactly once, after the last callback invocation.
        drop(unsafe { Box::from_raw(opaque as *mut Sender) });
    }
}

/// The stream handed to callers: events from the channel; dropping it deregisters the callback
/// (libvirt then frees the sender through `free_sender`).
struct Subscription {
    rx: UnboundedReceiverStream<LifecycleEvent>,
    conn: virt::connect::Connect,
    callback_id: c_int,
}

impl futures_core::Stream for Subscription {
    type Item = LifecycleEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // SAFETY: `conn` is a reference this struct owns, so the connection is still open;
        // `callback_id` was returned by `virConnectDomainEventRegisterAny` on it and is
        // deregistered exactly once, here.
        let rc = unsafe {
            sys::virConnectDomainEventDeregisterAny(self.conn.as_ptr(), self.callback_id)
        };
        if rc < 0 {
            log::warn!(
                "cannot deregister lifecycle callback {}: {}",
                self.callback_id,
                virt::error::Error::last_error().message()
            );
        }
    }
}

/// Registers a lifecycle callback for every domain on `conn`.
pub(super) fn subscribe(conn: &virt::connect::Connect) -> Result<EventStream, virt::error::Error> {
    let (tx, rx) = unbounded_channel::<LifecycleEvent>();
    let opaque = Box::into_raw(Box::new(tx)) as *mut c_void;
    type Lifecycle = unsafe extern "C" fn(
        sys::virConnectPtr,
        sys::virDomainPtr,
        c_int,
        c_int,
        *mut c_void,
    ) -> c_int;
    type Generic = unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void);
    // SAFETY: this is libvirt's documented VIR_DOMAIN_EVENT_CALLBACK cast: the generic
    // callback type is only a carrier, and libvirt calls it with the lifecycle signature
    // because it is registered for VIR_DOMAIN_EVENT_ID_LIFECYCLE. Both are C function pointers.
    let cb: Generic = unsafe { std::mem::transmute::<Lifecycle, Generic>(on_lifecycle) };
    // SAFETY: `conn` is open; a null domain means "all domains"; `opaque` is a leaked
    // `Box<Sender>` that libvirt hands back to `on_lifecycle` and finally to `free_sender`.
    let id = unsafe {
        sys::virConnectDomainEventRegisterAny(
            conn.as_ptr(),
            std::ptr::null_mut(),
            sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            Some(cb),
            opaque,
            Some(free_sender),
        )
    };
    if id < 0 {
        let err = virt::error::Error::last_error();
        // SAFETY: registration failed, so libvirt did not take ownership of `opaque` and will
        // never call `free_sender`; reclaim the box here, once.
        drop(unsafe { Box::from_raw(opaque as *mut Sender) });
        return Err(err);
    }
    Ok(Box::pin(Subscription {
        rx: UnboundedReceiverStream::new(rx),
        conn: conn.clone(),
        callback_id: id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_event_numbers() {
        assert_eq!(kind_of(0), LifecycleKind::Defined);
        assert_eq!(kind_of(1), LifecycleKind::Undefined);
        assert_eq!(kind_of(2), LifecycleKind::Started);
        assert_eq!(kind_of(3), LifecycleKind::Other); // suspended
        assert_eq!(kind_of(5), LifecycleKind::Stopped);
        assert_eq!(kind_of(-1), LifecycleKind::Other);
    }
}
