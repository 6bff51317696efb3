//! Frames to and from bytes: [`encode`] writes frames as they go on the wire, and a
//! [`FrameBuffer`] takes the bytes a socket gives and splits off one whole frame at a time,
//! strictly (a frame type AMQP does not have, a frame over the negotiated size, a missing
//! frame-end octet and a method whose arguments do not decode are each told apart). The
//! reference broker reads its clients with it, the runner's raw-frame target and its tests read
//! brokers with it.

use crate::request::known_method;
use amq_protocol::frame::{gen_frame, parse_frame, AMQPFrame};

/// The octets of `frames`, in order, written into one buffer; `None` if one cannot be encoded (a
/// string or table too long for its field).
pub fn encode(frames: &[AMQPFrame]) -> Option<Vec<u8>> {
    frames.iter().try_fold(Vec::new(), |out, frame| cookie_factory::gen(gen_frame(frame), out).ok().map(|(out, _)| out))
}

/// Append `frame`'s octets to `out`; `false`, and `out` as it was, if it cannot be encoded (a
/// writer that batches frames keeps the others).
pub fn encode_into(frame: &AMQPFrame, out: &mut Vec<u8>) -> bool {
    match cookie_factory::gen(gen_frame(frame), Vec::new()) {
        Ok((bytes, _)) => {
            out.extend_from_slice(&bytes);
            true
        }
        Err(_) => false,
    }
}

/// A frame that cannot be taken, with what the frame-error reply says of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// Not a frame AMQP allows here (501 frame-error): why, and the class and method ids of the
    /// method it carried when they are known (otherwise 0, 0).
    Malformed(String, (u16, u16)),
    /// A method frame whose class and method ids name no method of AMQP 0-9-1 (540).
    Unknown {
        /// The class id.
        class_id: u16,
        /// The method id.
        method_id: u16,
    },
}

/// One whole frame split off a [`FrameBuffer`].
#[derive(Clone, Debug, PartialEq)]
pub struct Framed {
    /// The frame.
    pub frame: AMQPFrame,
    /// A method frame's payload as it came (class id, method id, arguments): what a parser that
    /// keeps fields amq-protocol drops reads; empty for other frames.
    pub payload: Vec<u8>,
}

/// Bytes read from a socket and not yet taken as frames.
#[derive(Clone, Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        FrameBuffer::default()
    }

    /// Add what the socket gave.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer itself, to read into directly (an async `read_buf`).
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// What has been read and not taken.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Drop the first `n` octets (a protocol header, once checked).
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// The next frame, once the buffer holds a whole one (`None` until then); a frame larger than
    /// `frame_max` octets is a fault as soon as its header says so. A fault in the framing itself
    /// (type, size, frame-end) leaves the buffer as it was, since nothing after it can be read;
    /// a method that does not decode is taken off, so that what follows it can still be read (a
    /// close-ok after the close that answered it).
    pub fn next(&mut self, frame_max: u32) -> Option<Result<Framed, FrameFault>> {
        let buf = &self.buf;
        if buf.len() < 7 {
            return None;
        }
        let kind = buf[0];
        if !matches!(kind, 1 | 2 | 3 | 8) {
            return Some(Err(FrameFault::Malformed(format!("unknown frame type {kind}"), (0, 0))));
        }
        let channel = u16::from_be_bytes([buf[1], buf[2]]);
        let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
        if size as u64 + 8 > u64::from(frame_max) {
            let what = format!("a frame of {} octets is larger than frame-max {frame_max}", size + 8);
            return Some(Err(FrameFault::Malformed(what, (0, 0))));
        }
        if buf.len() < size + 8 {
            return None;
        }
        if buf[size + 7] != 0xCE {
            let what = format!("no frame-end octet after a frame on channel {channel}");
            return Some(Err(FrameFault::Malformed(what, (0, 0))));
        }
        let payload = if kind == 1 { buf[7..7 + size].to_vec() } else { Vec::new() };
        let got = match parse_frame(&buf[..size + 8]) {
            Ok((&[], frame)) => Ok(Framed { frame, payload }),
            _ if kind == 1 && size >= 4 => {
                let class_id = u16::from_be_bytes([payload[0], payload[1]]);
                let method_id = u16::from_be_bytes([payload[2], payload[3]]);
                if known_method(class_id, method_id) {
                    let why = format!("cannot decode the arguments of method {class_id}.{method_id}");
                    Err(FrameFault::Malformed(why, (class_id, method_id)))
                } else {
                    Err(FrameFault::Unknown { class_id, method_id })
                }
            }
            _ => Err(FrameFault::Malformed(format!("malformed frame of type {kind} on channel {channel}"), (0, 0))),
        };
        self.buf.drain(..size + 8);
        Some(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::{channel, AMQPClass};

    fn open(n: u16) -> AMQPFrame {
        AMQPFrame::Method(n, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))
    }

    #[test]
    fn frames_split_however_the_bytes_come() {
        let bytes = encode(&[open(1), AMQPFrame::Heartbeat, open(2)]).expect("encodes");
        let mut buffer = FrameBuffer::new();
        let mut got = Vec::new();
        for b in &bytes {
            buffer.extend(&[*b]);
            while let Some(f) = buffer.next(4096) {
                got.push(f.expect("a whole frame").frame);
            }
        }
        assert_eq!(got, vec![open(1), AMQPFrame::Heartbeat, open(2)]);
        assert!(buffer.pending().is_empty());
    }

    #[test]
    fn faults_are_told_apart() {
        let fault = |bytes: &[u8], frame_max| {
            let mut b = FrameBuffer::new();
            b.extend(bytes);
            b.next(frame_max).expect("decided").expect_err("a fault")
        };
        assert!(
            matches!(fault(&[9, 0, 0, 0, 0, 0, 0, 0xCE], 4096), FrameFault::Malformed(w, _) if w.contains("type 9"))
        );
        assert!(
            matches!(fault(&[1, 0, 1, 0, 0, 0x20, 0, 0], 4096), FrameFault::Malformed(w, _) if w.contains("frame-max"))
        );
        assert!(
            matches!(fault(&[8, 0, 0, 0, 0, 0, 0, 0], 4096), FrameFault::Malformed(w, _) if w.contains("frame-end"))
        );
        assert_eq!(
            fault(&[1, 0, 1, 0, 0, 0, 4, 0, 99, 0, 10, 0xCE], 4096),
            FrameFault::Unknown { class_id: 99, method_id: 10 }
        );
        let bad_args = [1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 10, 7, 0xCE];
        assert!(matches!(fault(&bad_args, 4096), FrameFault::Malformed(_, (20, 10))));
    }
}
