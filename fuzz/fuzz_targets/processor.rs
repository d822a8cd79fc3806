//! The request processor fed arbitrary frames after a valid connect: it must
//! answer or close, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rzk::processor::fuzzing::drive;

fuzz_target!(|data: &[u8]| {
    drive(data);
});
