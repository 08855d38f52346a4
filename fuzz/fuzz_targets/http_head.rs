//! Any bytes fed to the packet path's HTTP/1.1 parsers give a typed result, never a
//! panic; what parses points inside the input, and a chunked body decodes to the same
//! bytes however its input is split; a whole message taken off a buffer consumes
//! only what it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_proto::http1::{parse_request, parse_response, take_message, ChunkedDecoder};

fuzz_target!(|input: &[u8]| {
    if let Ok(Some(head)) = parse_request(input) {
        assert!(head.head_len <= input.len());
        for range in [head.authorization, head.content_type]
            .into_iter()
            .flatten()
        {
            assert!(range.end <= head.head_len);
        }
    }
    if let Ok(Some(head)) = parse_response(input) {
        assert!(head.head_len <= input.len());
    }
    let mut buffer = input.to_vec();
    if let Ok(Some(message)) = take_message(&mut buffer, 1 << 16, true) {
        assert!(buffer.len() + message.body.len() <= input.len());
    }
    let mut whole = Vec::new();
    let mut decoder = ChunkedDecoder::new(1 << 16);
    let Ok(used) = decoder.decode(input, &mut whole) else {
        return;
    };
    assert!(used <= input.len());
    // The same input in two pieces, the second starting where the first stopped.
    let split = input.len() / 2;
    let mut pieces = Vec::new();
    let mut again = ChunkedDecoder::new(1 << 16);
    let first = again
        .decode(&input[..split], &mut pieces)
        .expect("a prefix of valid input");
    let second = again
        .decode(&input[first..used], &mut pieces)
        .expect("the rest of valid input");
    assert_eq!(first + second, used);
    assert_eq!(pieces, whole);
    assert_eq!(again.is_done(), decoder.is_done());
});
