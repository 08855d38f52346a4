//! The harness's bounds, in one place as in every crate.

/// Where test ports come from: below the kernel's ephemeral range (32768 and up by
/// default). An outgoing connection never takes one of these as its local port, so a
/// test that stops a process and starts it again on the same port finds it free.
pub const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;
/// Largest HTTP body the harness reads: a state document or a metrics page.
pub const BODY_SIZE_MAX: usize = 1 << 24;

const _: () = assert!(TEST_PORTS.end <= 32_768 && TEST_PORTS.start < TEST_PORTS.end);
