//! Every decoder of bytes that come from outside: request bodies of every
//! op code, connect requests, transaction bodies, log records, snapshots.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rzk::jute::{Reader, Record};
use rzk::proto::{ConnectRequest, Request, txn::Txn};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let (op, body) = (data[0] as i8 as i32, &data[1..]);
    let _ = Request::decode(op, &mut Reader::new(body));
    let _ = Request::decode(op + 100, &mut Reader::new(body));
    let _ = ConnectRequest::decode(body);
    let _ = Txn::read_body(op, &mut Reader::new(body));
    let _ = rzk::storage::format::scan_log(body);
    let _ = rzk::storage::format::decode_snapshot(body);
});
